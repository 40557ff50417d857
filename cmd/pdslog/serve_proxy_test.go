package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/api/proxy/proxytest"
)

// The proxy settings are checked with the others, by their env names.
func TestServeRefusesBadProxySettings(t *testing.T) {
	const did = "did:web:api.bsky.app"
	tests := []struct {
		env   map[string]string
		want  string
		valid bool
	}{
		{map[string]string{"PDS_BSKY_APP_VIEW_URL": "https://api.bsky.app"}, "PDS_BSKY_APP_VIEW_DID: must be set when PDS_BSKY_APP_VIEW_URL is", false},
		{map[string]string{"PDS_BSKY_APP_VIEW_DID": did}, "PDS_BSKY_APP_VIEW_URL: must be set", false},
		{map[string]string{"PDS_BSKY_APP_VIEW_URL": "api.bsky.app", "PDS_BSKY_APP_VIEW_DID": did}, "PDS_BSKY_APP_VIEW_URL: \"api.bsky.app\" is not an http(s) URL", false},
		{map[string]string{"PDS_BSKY_APP_VIEW_URL": "https://api.bsky.app", "PDS_BSKY_APP_VIEW_DID": "api.bsky.app"}, "PDS_BSKY_APP_VIEW_DID: \"api.bsky.app\" is not a DID", false},
		{map[string]string{"PDS_BSKY_APP_VIEW_URL": "http://appview.internal", "PDS_BSKY_APP_VIEW_DID": did}, "refused while SSRF protection is on", false},
		{map[string]string{"PDS_MOD_SERVICE_URL": "https://mod.example", "PDS_MOD_SERVICE_DID": "nope"}, "PDS_MOD_SERVICE_DID", false},
		{map[string]string{"PDS_REPORT_SERVICE_URL": "ftp://x", "PDS_REPORT_SERVICE_DID": did}, "PDS_REPORT_SERVICE_URL", false},
		{map[string]string{"PDS_DISABLE_SSRF_PROTECTION": "perhaps"}, "PDS_DISABLE_SSRF_PROTECTION", false},
		{map[string]string{"PDS_PROXY_HEADERS_TIMEOUT": "0"}, "PDS_PROXY_HEADERS_TIMEOUT: must be positive", false},
		{map[string]string{"PDS_PROXY_MAX_RESPONSE_SIZE": "-5"}, "PDS_PROXY_MAX_RESPONSE_SIZE: must be positive", false},
		{map[string]string{"PDS_DID_CACHE_MAX_TTL": "1000"}, "PDS_DID_CACHE_MAX_TTL: 1s is shorter than PDS_DID_CACHE_STALE_TTL", false},
		{map[string]string{"PDS_BSKY_APP_VIEW_CDN_URL_PATTERN": "https://cdn.example/%s/%s"}, "PDS_BSKY_APP_VIEW_CDN_URL_PATTERN", false},
		// http is fine once protection is off, by either switch
		{map[string]string{"PDS_BSKY_APP_VIEW_URL": "http://appview.internal", "PDS_BSKY_APP_VIEW_DID": did, "PDS_DISABLE_SSRF_PROTECTION": "true"}, "", true},
		{map[string]string{"PDS_BSKY_APP_VIEW_URL": "http://appview.internal", "PDS_BSKY_APP_VIEW_DID": did, "PDS_DEV_MODE": "true"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c := &serveCommand{stdout: io.Discard, stderr: io.Discard}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			f := newFlags("serve", serveSummary, io.Discard)
			c.common.register(f)
			// Only the proxy settings and the ones they depend on.
			f.String(&c.plcURL, "plc-url", "https://plc.directory", "", "PDS_DID_PLC_URL")
			f.Bool(&c.devMode, "dev-mode", false, "", "PDS_DEV_MODE")
			c.proxy.register(f)
			err := f.parse(nil)
			if err == nil {
				_, err = c.proxy.config(c.plcURL, c.devMode)
			}
			if tt.valid {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// And serve itself refuses before touching anything.
	dir := t.TempDir()
	t.Setenv("PDS_DATA_DIRECTORY", dir)
	t.Setenv("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app")
	code, _, errOut := runCmd(t, t.Context(), "serve")
	if code != exitUsage || !strings.Contains(errOut, "PDS_BSKY_APP_VIEW_DID") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatal("a refused start touched the data dir")
	}
}

// `pdslog serve` with an AppView configured by its settings: app.bsky.*
// goes to the stand-in with service auth it verifies against the PLC
// directory, preferences stay here and survive a replay of the log,
// and the user's new post shows in the timeline before the AppView has
// indexed it.
func TestServeProxyEndToEnd(t *testing.T) {
	plcSrv := plcserver.Start(t)
	av := proxytest.Start(t, plcSrv.URL, nil)
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--plc-url", plcSrv.URL, "--bsky-app-view-url", av.URL, "--bsky-app-view-did", av.DID.String(), "--dev-mode"}
	addr, out, stop := startServe(t, args...)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	m := inviteRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no invite code printed: %q", out.String())
	}
	call := func(method, path, token string, body any) (int, []byte, http.Header) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, "http://"+addr+"/xrpc/"+path, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header
	}
	st, b, _ := call("POST", "com.atproto.server.createAccount", "", map[string]any{"handle": "alice.test", "email": "a@example.com", "password": "hunter22hunter", "inviteCode": m[1]})
	if st != 200 {
		t.Fatalf("createAccount: %d %s", st, b)
	}
	var acct struct{ DID, AccessJwt string }
	_ = json.Unmarshal(b, &acct)
	tok := acct.AccessJwt

	pref := `{"$type":"app.bsky.actor.defs#savedFeedsPrefV2","items":[{"id":"3kabc","type":"timeline","value":"following","pinned":true}]}`
	if st, b, _ := call("POST", "app.bsky.actor.putPreferences", tok, json.RawMessage(`{"preferences":[`+pref+`]}`)); st != 200 {
		t.Fatalf("putPreferences: %d %s", st, b)
	}
	post := func(text string) string {
		st, b, _ := call("POST", "com.atproto.repo.createRecord", tok, map[string]any{"repo": acct.DID, "collection": "app.bsky.feed.post",
			"record": map[string]any{"text": text, "createdAt": "2026-11-26T12:00:00.000Z"}})
		if st != 200 {
			t.Fatalf("createRecord: %d %s", st, b)
		}
		var w struct{ Commit struct{ Rev string } }
		_ = json.Unmarshal(b, &w)
		return w.Commit.Rev
	}
	seen := post("indexed already")
	post("not indexed yet")
	av.Handle("app.bsky.feed.getTimeline", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		proxytest.JSON(w, map[string]any{"feed": []any{}}, "Atproto-Repo-Rev", seen)
	})
	st, b, h := call("GET", "app.bsky.feed.getTimeline", tok, nil)
	if st != 200 || !strings.Contains(string(b), `"text":"not indexed yet"`) || strings.Contains(string(b), "indexed already") || h.Get("Atproto-Upstream-Lag") == "" {
		t.Fatalf("timeline: %d %s", st, b)
	}
	calls := av.Calls()
	if len(calls) != 1 || calls[0].Issuer.String() != acct.DID {
		t.Fatalf("AppView calls %+v", calls)
	}
	getPrefs := func() string {
		st, b, _ := call("GET", "app.bsky.actor.getPreferences", tok, nil)
		if st != 200 {
			t.Fatalf("getPreferences: %d %s", st, b)
		}
		return string(bytes.TrimSpace(b))
	}
	want := `{"preferences":[` + pref + `]}`
	if got := getPrefs(); got != want {
		t.Fatalf("preferences %s, want %s", got, want)
	}
	stop()
	stopped = true

	// Rebuild every projection from the log, then serve again.
	if code, _, errOut := runCmd(t, context.Background(), "replay", "--data-dir", dir); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	addr, _, stop = startServe(t, args...)
	stopped = false
	if got := getPrefs(); got != want {
		t.Fatalf("preferences after replay %s, want %s", got, want)
	}
}
