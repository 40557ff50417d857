package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/apitest"
)

func TestDeactivateActivate(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	write := func() *apitest.Response {
		return env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post",
			"record": map[string]any{"text": "x", "createdAt": "2026-11-26T12:00:00.000Z"}})
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.deactivateAccount", nil, a.Token, map[string]any{}); r.Status != 200 {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	// The reference's checkDeactivated answer (the Bluesky app shows its
	// reactivation screen on it).
	if r := write(); r.Status != 401 || r.ErrorName() != "AccountDeactivated" {
		t.Fatalf("write while deactivated: %d %s", r.Status, r.Body)
	}
	var s sessionOut
	g := env.Do("GET", "/xrpc/com.atproto.server.getSession", nil, a.Token, nil)
	g.JSON(t, &s)
	if s.Active {
		t.Fatalf("getSession says active: %s", g.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.activateAccount", nil, a.Token, nil); r.Status != 200 {
		t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	if r := write(); r.Status != 200 {
		t.Fatalf("write after activate: %d %s", r.Status, r.Body)
	}
}

func TestCheckAccountStatusAndDidCredentials(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	for range 3 {
		r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post",
			"record": map[string]any{"text": "x", "createdAt": "2026-11-26T12:00:00.000Z"}})
		if r.Status != 200 {
			t.Fatal(r.Status)
		}
	}
	r := env.Do("GET", "/xrpc/com.atproto.server.checkAccountStatus", nil, a.Token, nil)
	var st struct {
		Activated      bool   `json:"activated"`
		ValidDid       bool   `json:"validDid"`
		RepoCommit     string `json:"repoCommit"`
		RepoBlocks     int    `json:"repoBlocks"`
		IndexedRecords int    `json:"indexedRecords"`
	}
	r.JSON(t, &st)
	if r.Status != 200 || !st.Activated || !st.ValidDid || st.RepoCommit == "" || st.IndexedRecords != 3 || st.RepoBlocks < 5 {
		t.Fatalf("checkAccountStatus: %d %s", r.Status, r.Body)
	}
	c := env.Do("GET", "/xrpc/com.atproto.identity.getRecommendedDidCredentials", nil, a.Token, nil)
	pub, _ := a.Key.PublicKey()
	if c.Status != 200 || !strings.Contains(string(c.Body), pub.DIDKey()) || !strings.Contains(string(c.Body), "at://"+a.Handle.String()) {
		t.Fatalf("getRecommendedDidCredentials: %d %s", c.Status, c.Body)
	}
}

// deactivateAccount with deleteAfter: the account is deleted once that
// time has passed if it is still deactivated; reactivating cancels it.
func TestDeactivateDeleteAfter(t *testing.T) {
	env := apitest.New(t)
	a, b := env.CreateAccount(), env.CreateAccount()
	soon := env.Clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, acct := range []*apitest.Account{a, b} {
		if r := env.Do("POST", "/xrpc/com.atproto.server.deactivateAccount", nil, acct.Token, map[string]any{"deleteAfter": soon}); r.Status != 200 {
			t.Fatalf("deactivate: %d %s", r.Status, r.Body)
		}
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.activateAccount", nil, b.Token, nil); r.Status != 200 {
		t.Fatalf("reactivate b: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	if n, err := env.PDS.DeleteScheduled(ctx); err != nil || n != 0 {
		t.Fatalf("before deleteAfter: %d deleted, %v", n, err)
	}
	env.Clock.Add(2 * time.Hour)
	if n, err := env.PDS.DeleteScheduled(ctx); err != nil || n != 1 {
		t.Fatalf("after deleteAfter: %d deleted, %v; want a", n, err)
	}
	if _, err := env.Accounts.Get(ctx, a.DID); err == nil {
		t.Fatal("a still exists")
	}
	if _, err := env.Accounts.Get(ctx, b.DID); err != nil {
		t.Fatal("b, reactivated, was deleted")
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.deactivateAccount", nil, b.Token, map[string]any{"deleteAfter": "tomorrow"}); r.Status != 400 {
		t.Fatalf("bad deleteAfter: %d %s", r.Status, r.Body)
	}
}
