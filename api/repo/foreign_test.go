package repo_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/proxy"
)

// TestRecordsOfOtherServers: getRecord of a repo this server does not
// host is passed through to the AppView (a real HTTP server standing in
// for it), as the reference does: the query as it came, no credentials
// (not even the caller's), the AppView's answer relayed, its errors too.
// Without an AppView it is RecordNotFound. describeRepo of such a repo is
// RepoNotFound and listRecords InvalidRequest, the reference's answers
// (neither is forwarded by the reference, and the AppView serves neither).
func TestRecordsOfOtherServers(t *testing.T) {
	const foreign = "did:plc:elsewhere0000000000000000"
	var mu sync.Mutex
	var seen []*http.Request
	appView := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Clone(r.Context()))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("rkey") == "missing" {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "RecordNotFound", "message": "Record not found"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"uri": "at://" + r.URL.Query().Get("repo") + "/app.bsky.feed.post/" + r.URL.Query().Get("rkey"),
			"cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", "value": map[string]any{"text": "from the AppView"}})
	}))
	defer appView.Close()
	env := apitest.New(t, func(c *api.Config) {
		c.Proxy = &proxy.Config{AppView: &proxy.Service{DID: "did:web:appview.test", URL: appView.URL}, DisableSSRFProtection: true}
	})
	a := env.CreateAccount()
	get := func(e *apitest.Env, repo, rkey, token string) *apitest.Response {
		return e.Do("GET", "/xrpc/com.atproto.repo.getRecord", url.Values{"repo": {repo}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, token, nil)
	}
	for _, repo := range []string{foreign, "someone.elsewhere.social"} {
		r := get(env, repo, "3jzfcijpj2z2a", a.Token)
		var out struct {
			URI   string
			Value struct{ Text string }
		}
		r.JSON(t, &out)
		if r.Status != 200 || out.Value.Text != "from the AppView" || out.URI != "at://"+repo+"/app.bsky.feed.post/3jzfcijpj2z2a" {
			t.Fatalf("getRecord of %s: %d %s", repo, r.Status, r.Body)
		}
	}
	if r := get(env, foreign, "missing", ""); r.Status != 400 || r.ErrorName() != "RecordNotFound" {
		t.Fatalf("the AppView's error: %d %s", r.Status, r.Body)
	}
	mu.Lock()
	if len(seen) != 3 {
		t.Fatalf("the AppView was asked %d times, want 3", len(seen))
	}
	for _, r := range seen {
		if r.URL.Path != "/xrpc/com.atproto.repo.getRecord" || r.Header.Get("Authorization") != "" || !strings.Contains(r.URL.RawQuery, "collection=app.bsky.feed.post") {
			t.Fatalf("forwarded as %s %s?%s with Authorization %q", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"))
		}
	}
	mu.Unlock()
	// A local repo is never forwarded.
	if r := get(env, a.DID.String(), "3jzfcijpj2z2a", ""); r.Status != 400 || r.ErrorName() != "RecordNotFound" || len(seen) != 3 {
		t.Fatalf("missing local record: %d %s (AppView asked %d times)", r.Status, r.Body, len(seen))
	}

	if r := env.Do("GET", "/xrpc/com.atproto.repo.describeRepo", url.Values{"repo": {foreign}}, "", nil); r.Status != 400 || r.ErrorName() != "RepoNotFound" {
		t.Fatalf("describeRepo elsewhere: %d %s", r.Status, r.Body)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.repo.listRecords", url.Values{"repo": {foreign}, "collection": {"app.bsky.feed.post"}}, "", nil); r.Status != 400 ||
		r.ErrorName() != "InvalidRequest" || !strings.Contains(string(r.Body), "Could not find repo: "+foreign) {
		t.Fatalf("listRecords elsewhere: %d %s", r.Status, r.Body)
	}

	// No AppView: nowhere to ask.
	bare := apitest.New(t)
	if r := get(bare, foreign, "3jzfcijpj2z2a", ""); r.Status != 400 || r.ErrorName() != "RecordNotFound" {
		t.Fatalf("without an AppView: %d %s", r.Status, r.Body)
	}
}
