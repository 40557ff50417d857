package proxy_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/pdslog/pdslog/api/proxy/proxytest"
)

type written struct {
	URI, CID string
	Rev      string
}

func createRecord(t *testing.T, env *proxytest.Env, u *proxytest.User, coll string, rkey string, rec map[string]any) written {
	t.Helper()
	in := map[string]any{"repo": u.DID, "collection": coll, "record": rec}
	path := "/xrpc/com.atproto.repo.createRecord"
	if rkey != "" {
		in["rkey"] = rkey
		path = "/xrpc/com.atproto.repo.putRecord"
	}
	r := env.Request("POST", path, nil, u.Token, in)
	if r.Status != 200 {
		t.Fatalf("write %s: %d %s", coll, r.Status, r.Body)
	}
	var out struct {
		URI, CID string
		Commit   struct{ Rev string }
	}
	r.JSON(t, &out)
	return written{URI: out.URI, CID: out.CID, Rev: out.Commit.Rev}
}

// get calls a method through the server and decodes the JSON answer.
func get(t *testing.T, env *proxytest.Env, token, nsid string, q url.Values) (map[string]any, http.Header) {
	t.Helper()
	r := env.Request("GET", "/xrpc/"+nsid, q, token, nil)
	if r.Status != 200 {
		t.Fatalf("%s: %d %s", nsid, r.Status, r.Body)
	}
	var m map[string]any
	r.JSON(t, &m)
	return m, r.Header
}

func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// TestReadAfterWrite: the stand-in AppView has indexed alice's repo up to
// her first post (its answers carry that rev); she then changes her
// profile, replies to that post and quotes it. Through the PDS, her
// timeline, author feed, thread, profile(s) already show the new records,
// and a thread of the reply the AppView does not know yet is built
// locally. Once the AppView's rev catches up, answers pass unchanged.
func TestReadAfterWrite(t *testing.T) {
	env := proxytest.NewEnv(t, nil)
	alice, bob := env.CreateUser(), env.CreateUser()
	av := env.AppView
	createRecord(t, env, alice, "app.bsky.actor.profile", "self", map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Old Alice"})
	p0 := createRecord(t, env, alice, "app.bsky.feed.post", "", map[string]any{"$type": "app.bsky.feed.post", "text": "first", "createdAt": "2026-01-01T00:00:00Z"})
	seen := p0.Rev // the AppView has indexed up to here

	author := map[string]any{"did": alice.DID, "handle": alice.Handle, "displayName": "Old Alice"}
	p0View := map[string]any{"uri": p0.URI, "cid": p0.CID, "author": author, "likeCount": 3, "indexedAt": "2026-01-01T00:00:01.000Z",
		"record": map[string]any{"$type": "app.bsky.feed.post", "text": "first", "createdAt": "2026-01-01T00:00:00Z"}}
	rev := func() string { return seen }
	av.Handle("app.bsky.feed.getTimeline", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		proxytest.JSON(w, map[string]any{"feed": []any{map[string]any{"post": p0View}}, "cursor": "c1"}, "Atproto-Repo-Rev", rev())
	})
	av.Handle("app.bsky.feed.getAuthorFeed", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		proxytest.JSON(w, map[string]any{"feed": []any{map[string]any{"post": p0View}}}, "Atproto-Repo-Rev", rev())
	})
	av.Handle("app.bsky.actor.getProfile", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		proxytest.JSON(w, map[string]any{"did": alice.DID, "handle": alice.Handle, "displayName": "Old Alice", "followersCount": 7}, "Atproto-Repo-Rev", rev())
	})
	av.Handle("app.bsky.actor.getProfiles", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		proxytest.JSON(w, map[string]any{"profiles": []any{
			map[string]any{"did": bob.DID, "handle": bob.Handle, "displayName": "Bob"},
			map[string]any{"did": alice.DID, "handle": alice.Handle, "displayName": "Old Alice"},
		}}, "Atproto-Repo-Rev", rev())
	})
	av.Handle("app.bsky.feed.getPosts", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		if r.URL.Query().Get("uris") != p0.URI {
			t.Errorf("getPosts for %q", r.URL.Query().Get("uris"))
		}
		proxytest.JSON(w, map[string]any{"posts": []any{p0View}})
	})
	var reply written
	av.Handle("app.bsky.feed.getPostThread", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		switch r.URL.Query().Get("uri") {
		case p0.URI:
			proxytest.JSON(w, map[string]any{"thread": map[string]any{"$type": "app.bsky.feed.defs#threadViewPost", "post": p0View, "replies": []any{}}},
				"Atproto-Repo-Rev", rev())
		default: // the reply: not indexed yet
			w.Header().Set("Atproto-Repo-Rev", rev())
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"error":"NotFound","message":"Post not found"}`))
		}
	})

	// Before anything new is written, answers pass through unchanged.
	tl, h := get(t, env, alice.Token, "app.bsky.feed.getTimeline", nil)
	if n := len(tl["feed"].([]any)); n != 1 || h.Get("Atproto-Upstream-Lag") != "" || h.Get("Atproto-Repo-Rev") != seen {
		t.Fatalf("nothing newer: %d items, lag %q, rev %q", n, h.Get("Atproto-Upstream-Lag"), h.Get("Atproto-Repo-Rev"))
	}

	createRecord(t, env, alice, "app.bsky.actor.profile", "self", map[string]any{"$type": "app.bsky.actor.profile", "displayName": "New Alice", "description": "hi"})
	strong := map[string]any{"uri": p0.URI, "cid": p0.CID}
	reply = createRecord(t, env, alice, "app.bsky.feed.post", "", map[string]any{"$type": "app.bsky.feed.post", "text": "a reply",
		"createdAt": "2026-01-02T00:00:00Z", "reply": map[string]any{"root": strong, "parent": strong},
		"embed": map[string]any{"$type": "app.bsky.embed.external", "external": map[string]any{"uri": "https://example.com", "title": "T", "description": "D"}}})
	quote := createRecord(t, env, alice, "app.bsky.feed.post", "", map[string]any{"$type": "app.bsky.feed.post", "text": "a quote",
		"createdAt": "2026-01-02T00:00:01Z", "embed": map[string]any{"$type": "app.bsky.embed.record", "record": strong}})

	checkPost := func(what string, pv any, want written, text string) {
		t.Helper()
		if path(pv, "uri") != want.URI || path(pv, "cid") != want.CID || path(pv, "record", "text") != text ||
			path(pv, "author", "did") != alice.DID.String() || path(pv, "author", "handle") != alice.Handle ||
			path(pv, "author", "displayName") != "New Alice" || path(pv, "likeCount") != 0.0 || path(pv, "indexedAt") == nil {
			b, _ := json.Marshal(pv)
			t.Errorf("%s: post view %s", what, b)
		}
	}

	tl, h = get(t, env, alice.Token, "app.bsky.feed.getTimeline", nil)
	feed := tl["feed"].([]any)
	if len(feed) != 3 || tl["cursor"] != "c1" {
		t.Fatalf("timeline: %d items, cursor %v", len(feed), tl["cursor"])
	}
	checkPost("timeline[0]", path(feed, 0, "post"), quote, "a quote")
	checkPost("timeline[1]", path(feed, 1, "post"), reply, "a reply")
	if path(feed, 2, "post", "uri") != p0.URI || path(feed, 2, "post", "likeCount") != 3.0 {
		t.Errorf("the AppView's item moved or changed: %v", path(feed, 2))
	}
	if path(feed, 1, "post", "embed", "$type") != "app.bsky.embed.external#view" || path(feed, 1, "post", "embed", "external", "title") != "T" {
		t.Errorf("external embed view: %v", path(feed, 1, "post", "embed"))
	}
	if path(feed, 0, "post", "embed", "$type") != "app.bsky.embed.record#view" ||
		path(feed, 0, "post", "embed", "record", "$type") != "app.bsky.embed.record#viewRecord" ||
		path(feed, 0, "post", "embed", "record", "uri") != p0.URI || path(feed, 0, "post", "embed", "record", "value", "text") != "first" {
		t.Errorf("quote embed view: %v", path(feed, 0, "post", "embed"))
	}
	if lag, err := strconv.Atoi(h.Get("Atproto-Upstream-Lag")); err != nil || lag < 0 {
		t.Errorf("Atproto-Upstream-Lag %q", h.Get("Atproto-Upstream-Lag"))
	}

	af, _ := get(t, env, alice.Token, "app.bsky.feed.getAuthorFeed", url.Values{"actor": {alice.DID.String()}})
	feed = af["feed"].([]any)
	if len(feed) != 3 {
		t.Fatalf("author feed: %d items", len(feed))
	}
	checkPost("author feed[0]", path(feed, 0, "post"), quote, "a quote")
	if path(feed, 2, "post", "author", "displayName") != "New Alice" {
		t.Errorf("author view of the AppView's item not updated: %v", path(feed, 2, "post", "author"))
	}

	th, _ := get(t, env, alice.Token, "app.bsky.feed.getPostThread", url.Values{"uri": {p0.URI}})
	if path(th, "thread", "post", "uri") != p0.URI || path(th, "thread", "replies", 0, "$type") != "app.bsky.feed.defs#threadViewPost" {
		t.Fatalf("thread: %v", th)
	}
	checkPost("thread reply", path(th, "thread", "replies", 0, "post"), reply, "a reply")

	// The reply's own thread: the AppView says NotFound, the PDS answers
	// from its records, with the parent from the AppView.
	th, _ = get(t, env, alice.Token, "app.bsky.feed.getPostThread", url.Values{"uri": {reply.URI}, "parentHeight": {"5"}})
	checkPost("local thread", path(th, "thread", "post"), reply, "a reply")
	if path(th, "thread", "parent", "post", "uri") != p0.URI {
		t.Errorf("local thread's parent: %v", path(th, "thread", "parent"))
	}
	calls := av.Calls()
	if c := calls[len(calls)-1]; c.NSID != "app.bsky.feed.getPostThread" || c.Query.Get("uri") != p0.URI || c.Query.Get("depth") != "0" ||
		c.Query.Get("parentHeight") != "5" || c.Issuer != alice.DID {
		t.Errorf("parent lookup: %+v", c)
	}
	// Someone else's missing post stays NotFound.
	r := env.Request("GET", "/xrpc/app.bsky.feed.getPostThread", url.Values{"uri": {reply.URI}}, bob.Token, nil)
	if name, _ := errorName(t, r.Body); r.Status != 400 || name != "NotFound" {
		t.Errorf("bob's view of the unindexed reply: %d %s", r.Status, r.Body)
	}

	prof, _ := get(t, env, alice.Token, "app.bsky.actor.getProfile", url.Values{"actor": {alice.DID.String()}})
	if prof["displayName"] != "New Alice" || prof["description"] != "hi" || prof["followersCount"] != 7.0 {
		t.Errorf("profile: %v", prof)
	}
	profs, _ := get(t, env, alice.Token, "app.bsky.actor.getProfiles", url.Values{"actors": {bob.DID.String(), alice.DID.String()}})
	if path(profs, "profiles", 0, "displayName") != "Bob" || path(profs, "profiles", 1, "displayName") != "New Alice" {
		t.Errorf("profiles: %v", profs)
	}
	// Bob's view of alice is the AppView's: read-after-write is for one's
	// own records.
	prof, _ = get(t, env, bob.Token, "app.bsky.actor.getProfile", url.Values{"actor": {alice.DID.String()}})
	if prof["displayName"] != "Old Alice" {
		t.Errorf("bob sees alice's unindexed profile: %v", prof)
	}

	// The AppView catches up: its answers come back as it sent them.
	seen = quote.Rev
	r = env.Request("GET", "/xrpc/app.bsky.actor.getProfile", nil, alice.Token, nil)
	if r.Status != 200 || r.Header.Get("Atproto-Upstream-Lag") != "" {
		t.Fatalf("caught-up profile: %d %s", r.Status, r.Body)
	}
	var m map[string]any
	r.JSON(t, &m)
	if m["displayName"] != "Old Alice" {
		t.Errorf("caught-up answer was rewritten: %s", r.Body)
	}
}

// TestReadAfterWriteSince: only the records written after the AppView's
// rev are merged, found among many earlier commits; at most the oldest
// ten of them; deleted ones not at all; nothing when the rev predates the
// account's first commit (another history) or is not a TID.
func TestReadAfterWriteSince(t *testing.T) {
	env := proxytest.NewEnv(t, nil)
	alice := env.CreateUser()
	var seen string
	env.AppView.Handle("app.bsky.feed.getTimeline", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		proxytest.JSON(w, map[string]any{"feed": []any{}}, "Atproto-Repo-Rev", seen)
	})
	post := func(text string) written {
		return createRecord(t, env, alice, "app.bsky.feed.post", "", map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-01-01T00:00:00Z"})
	}
	texts := func() []string {
		tl, _ := get(t, env, alice.Token, "app.bsky.feed.getTimeline", nil)
		var out []string
		for _, item := range tl["feed"].([]any) {
			out = append(out, path(item, "post", "record", "text").(string))
		}
		return out
	}
	var before written
	for i := range 40 {
		before = post("old " + strconv.Itoa(i))
	}
	seen = before.Rev
	var after []written
	for i := range 12 {
		after = append(after, post("new "+strconv.Itoa(i)))
	}
	// delete new 1: it is not shown; the oldest ten left are, newest first
	r := env.Request("POST", "/xrpc/com.atproto.repo.deleteRecord", nil, alice.Token,
		map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "rkey": after[1].URI[len(after[1].URI)-13:]})
	if r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	got, _ := json.Marshal(texts())
	if want := `["new 10","new 9","new 8","new 7","new 6","new 5","new 4","new 3","new 2","new 0"]`; string(got) != want {
		t.Errorf("merged %s, want %s", got, want)
	}
	seen = after[10].Rev
	if got, _ := json.Marshal(texts()); string(got) != `["new 11"]` {
		t.Errorf("after new 10: merged %s", got)
	}
	for _, rev := range []string{"2222222222222", "not-a-tid"} { // before the account existed; junk
		seen = rev
		if got := texts(); len(got) != 0 {
			t.Errorf("rev %s: merged %v", rev, got)
		}
	}
}
