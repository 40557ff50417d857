package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
)

// A real atproto client library (indigo's atclient) drives `pdslog serve`:
// login, writes, reads, token refresh, logout, and an admin call.
func TestServeWithIndigoClient(t *testing.T) {
	plcSrv := plcserver.Start(t)
	dir := t.TempDir()
	t.Setenv("PDS_ADMIN_PASSWORD", "admin-secret")
	addr, out, stop := startServe(t, "--data-dir", dir, "--plc-url", plcSrv.URL)
	defer stop()
	m := inviteRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no invite printed: %q", out.String())
	}
	host := "http://" + addr
	body, _ := json.Marshal(map[string]any{"handle": "zed.test", "email": "z@example.com", "password": "zed-password-1", "inviteCode": m[1]})
	resp, err := http.Post(host+"/xrpc/com.atproto.server.createAccount", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("createAccount: %d", resp.StatusCode)
	}

	ctx := t.Context()
	c, err := atclient.LoginWithPasswordHost(ctx, host, "zed.test", "zed-password-1", "", nil)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	did := c.AccountDID
	var created struct{ URI, CID string }
	if err := c.Post(ctx, "com.atproto.repo.createRecord", map[string]any{"repo": did.String(), "collection": "app.bsky.feed.post",
		"record": map[string]any{"text": "via atclient", "createdAt": "2026-11-26T12:00:00.000Z"}}, &created); err != nil {
		t.Fatalf("createRecord: %v", err)
	}
	var got struct {
		CID   string         `json:"cid"`
		Value map[string]any `json:"value"`
	}
	rkey := created.URI[len(created.URI)-13:]
	if err := c.Get(ctx, "com.atproto.repo.getRecord", map[string]any{"repo": did.String(), "collection": "app.bsky.feed.post", "rkey": rkey}, &got); err != nil {
		t.Fatalf("getRecord: %v", err)
	}
	if got.CID != created.CID || got.Value["text"] != "via atclient" {
		t.Fatalf("getRecord %+v", got)
	}
	// a refused write comes back as a typed API error with the lexicon's name
	err = c.Post(ctx, "com.atproto.repo.createRecord", map[string]any{"repo": did.String(), "collection": "app.bsky.feed.post",
		"record": map[string]any{"text": 12}}, nil)
	var apiErr *atclient.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Name != "InvalidRequest" {
		t.Fatalf("invalid record: %v", err)
	}
	// token refresh through the client's own refresh path
	pa := c.Auth.(*atclient.PasswordAuth)
	_, oldRefresh := pa.GetTokens()
	if err := pa.Refresh(ctx, c.Client, oldRefresh); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, nr := pa.GetTokens(); nr == oldRefresh {
		t.Fatal("refresh token not rotated")
	}
	var sess struct{ Handle string }
	if err := c.Get(ctx, "com.atproto.server.getSession", nil, &sess); err != nil || sess.Handle != "zed.test" {
		t.Fatalf("getSession after refresh: %v %+v", err, sess)
	}
	// admin client deletes the account
	admin := atclient.NewAdminClient(host, "admin-secret")
	if err := admin.Post(ctx, "com.atproto.admin.deleteAccount", map[string]any{"did": did.String()}, nil); err != nil {
		t.Fatalf("admin deleteAccount: %v", err)
	}
	if _, err := atclient.LoginWithPasswordHost(ctx, host, "zed.test", "zed-password-1", "", nil); err == nil {
		t.Fatal("deleted account logged in")
	}
}
