package sync_test

import (
	"net/url"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
)

func toDID(t testing.TB, s string) syntax.DID {
	t.Helper()
	d, err := syntax.ParseDID(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Malformed or missing parameters are 400 InvalidRequest naming the
// parameter, before any repo is looked at.
func TestBadInput(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	did := a.DID.String()
	c := applyWrites(t, env, a, createW("app.bsky.feed.post", rk(1), post("x"))).CID
	tests := []struct {
		method string
		q      url.Values
		param  string
	}{
		{"getRepo", nil, "did"},
		{"getRepo", q("did", "not-a-did"), "did"},
		{"getRepo", q("did", "did:plc:"), "did"},
		{"getRepo", q("did", did, "since", "not-a-tid"), "since"},
		{"getRepo", q("did", did, "since", "3kabcdefghijkl"), "since"}, // 14 chars, not a TID
		{"getLatestCommit", q("did", "@alice"), "did"},
		{"getRepoStatus", nil, "did"},
		{"getRepoStatus", q("did", "alice.test"), "did"},
		{"getBlocks", q("did", did), "cids"},
		{"getBlocks", q("cids", c), "did"},
		{"getBlocks", q("did", did, "cids", "not-a-cid"), "cids"},
		{"getBlocks", q("did", did, "cids", c, "cids", "bafy"), "cids"},
		{"getRecord", q("did", did, "collection", "app.bsky.feed.post"), "rkey"},
		{"getRecord", q("did", did, "rkey", rk(1)), "collection"},
		{"getRecord", q("did", did, "collection", "not an nsid", "rkey", rk(1)), "collection"},
		{"getRecord", q("did", did, "collection", "app.bsky.feed.post", "rkey", ".."), "rkey"},
		{"getRecord", q("did", did, "collection", "app.bsky.feed.post", "rkey", "a/b"), "rkey"},
		{"getRecord", q("collection", "app.bsky.feed.post", "rkey", rk(1)), "did"},
		{"listRepos", q("limit", "0"), "limit"},
		{"listRepos", q("limit", "1001"), "limit"},
		{"listRepos", q("limit", "ten"), "limit"},
		{"listRepos", q("cursor", "not-a-did"), "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.method+"_"+tt.q.Encode(), func(t *testing.T) {
			errIs(t, get(env, tt.method, tt.q, ""), 400, "InvalidRequest", tt.param)
		})
	}
	// In range limits are fine.
	for _, l := range []string{"1", "1000"} {
		if r := get(env, "listRepos", q("limit", l), ""); r.Status != 200 {
			t.Fatalf("limit %s: %d %s", l, r.Status, r.Body)
		}
	}
}
