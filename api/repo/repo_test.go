package repo_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
)

type writeOut struct {
	URI              string `json:"uri"`
	CID              string `json:"cid"`
	ValidationStatus string `json:"validationStatus"`
	Commit           struct {
		CID string `json:"cid"`
		Rev string `json:"rev"`
	} `json:"commit"`
}

type recordOut struct {
	URI   string         `json:"uri"`
	CID   string         `json:"cid"`
	Value map[string]any `json:"value"`
}

var tids = syntax.NewTIDClock(1)

func tid() string { return tids.Next().String() }

func post(text string) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-26T12:00:00.000Z"}
}

func create(t *testing.T, env *apitest.Env, a *apitest.Account, rkey, text string) writeOut {
	t.Helper()
	in := map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post(text)}
	if rkey != "" {
		in["rkey"] = rkey
	}
	r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, in)
	if r.Status != 200 {
		t.Fatalf("createRecord: %d %s", r.Status, r.Body)
	}
	var out writeOut
	r.JSON(t, &out)
	return out
}

func getRecord(env *apitest.Env, repo, rkey string) *apitest.Response {
	return env.Do("GET", "/xrpc/com.atproto.repo.getRecord", url.Values{"repo": {repo}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, "", nil)
}

func TestWriteThenRead(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	w := create(t, env, a, "", "hello world")
	if !strings.HasPrefix(w.URI, "at://"+a.DID.String()+"/app.bsky.feed.post/") || w.Commit.Rev == "" || w.ValidationStatus != "valid" {
		t.Fatalf("create output %+v", w)
	}
	rkey := w.URI[strings.LastIndex(w.URI, "/")+1:]
	// read-your-writes: the record is there the moment the write returned,
	// by DID and by handle
	for _, repo := range []string{a.DID.String(), a.Handle.String()} {
		r := getRecord(env, repo, rkey)
		if r.Status != 200 {
			t.Fatalf("getRecord by %s: %d %s", repo, r.Status, r.Body)
		}
		var rec recordOut
		r.JSON(t, &rec)
		if rec.CID != w.CID || rec.Value["text"] != "hello world" || rec.URI != w.URI {
			t.Fatalf("getRecord %+v", rec)
		}
	}
	// getRecord with the wrong cid is RecordNotFound
	r := env.Do("GET", "/xrpc/com.atproto.repo.getRecord", url.Values{"repo": {a.DID.String()}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey},
		"cid": {"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}}, "", nil)
	if r.Status != 400 || r.ErrorName() != "RecordNotFound" {
		t.Fatalf("wrong cid: %d %s", r.Status, r.Body)
	}

	// putRecord updates, then creates
	upd := env.Do("POST", "/xrpc/com.atproto.repo.putRecord", nil, a.Token, map[string]any{
		"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkey, "record": post("edited"), "swapRecord": w.CID})
	if upd.Status != 200 {
		t.Fatalf("putRecord: %d %s", upd.Status, upd.Body)
	}
	var rec recordOut
	getRecord(env, a.DID.String(), rkey).JSON(t, &rec)
	if rec.Value["text"] != "edited" {
		t.Fatalf("after put: %+v", rec)
	}
	fresh := tid()
	if r := env.Do("POST", "/xrpc/com.atproto.repo.putRecord", nil, a.Token, map[string]any{
		"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": fresh, "record": post("new"), "swapRecord": nil}); r.Status != 200 {
		t.Fatalf("putRecord create: %d %s", r.Status, r.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.repo.putRecord", nil, a.Token, map[string]any{
		"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": fresh, "record": post("again"), "swapRecord": nil}); r.Status != 400 || r.ErrorName() != "InvalidSwap" {
		t.Fatalf("putRecord swapRecord null on existing: %d %s", r.Status, r.Body)
	}

	// deleteRecord, then it is gone; deleting again succeeds without a commit
	del := env.Do("POST", "/xrpc/com.atproto.repo.deleteRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkey})
	if del.Status != 200 || !strings.Contains(string(del.Body), `"commit"`) {
		t.Fatalf("deleteRecord: %d %s", del.Status, del.Body)
	}
	if r := getRecord(env, a.DID.String(), rkey); r.Status != 400 || r.ErrorName() != "RecordNotFound" {
		t.Fatalf("after delete: %d %s", r.Status, r.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.repo.deleteRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkey}); r.Status != 200 || strings.Contains(string(r.Body), `"commit"`) {
		t.Fatalf("delete again: %d %s", r.Status, r.Body)
	}

	// every commit in the log verifies (signature, MST proofs, chain)
	if err := env.Log.Verify(t.Context(), &eventlog.VerifyOptions{Check: commit.NewVerifier().Check}); err != nil {
		t.Fatal(err)
	}
}

func TestListRecords(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	var rkeys []string
	for range 7 {
		rk := tid()
		create(t, env, a, rk, "post "+rk)
		rkeys = append(rkeys, rk)
	}
	list := func(q url.Values) (out struct {
		Cursor  string      `json:"cursor"`
		Records []recordOut `json:"records"`
	}) {
		q.Set("repo", a.DID.String())
		q.Set("collection", "app.bsky.feed.post")
		r := env.Do("GET", "/xrpc/com.atproto.repo.listRecords", q, "", nil)
		if r.Status != 200 {
			t.Fatalf("listRecords: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &out)
		return out
	}
	var got []string
	for cursor := ""; ; {
		page := list(url.Values{"limit": {"3"}, "cursor": {cursor}})
		for _, r := range page.Records {
			got = append(got, r.URI[strings.LastIndex(r.URI, "/")+1:])
		}
		if page.Cursor == "" {
			break
		}
		cursor = page.Cursor
	}
	want := slices.Clone(rkeys)
	slices.Reverse(want) // newest (highest rkey) first
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pages %v, want %v", got, want)
	}
	rev := list(url.Values{"reverse": {"true"}, "limit": {"2"}})
	if len(rev.Records) != 2 || !strings.HasSuffix(rev.Records[0].URI, "/"+rkeys[0]) {
		t.Fatalf("reverse: %+v", rev)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.repo.listRecords", url.Values{"repo": {a.DID.String()}, "collection": {"app.bsky.feed.post"}, "limit": {"101"}}, "", nil); r.Status != 400 {
		t.Fatalf("limit 101: %d", r.Status)
	}
}

func TestApplyWrites(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	old, first, missing := tid(), tid(), tid()
	create(t, env, a, old, "old")
	in := map[string]any{"repo": a.DID, "writes": []any{
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": first, "value": post("a")},
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.like", "value": map[string]any{"subject": map[string]any{"uri": "at://did:plc:x/app.bsky.feed.post/1", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}, "createdAt": "2026-11-26T12:00:00.000Z"}},
		map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.feed.post", "rkey": old, "value": post("new")},
		map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": missing},
	}}
	// the delete of a missing record fails the whole batch, nothing is written
	head := env.Log.Head()
	r := env.Do("POST", "/xrpc/com.atproto.repo.applyWrites", nil, a.Token, in)
	if r.Status != 400 || env.Log.Head() != head {
		t.Fatalf("batch with a bad delete: %d %s (head %d -> %d)", r.Status, r.Body, head, env.Log.Head())
	}
	in["writes"] = in["writes"].([]any)[:3]
	r = env.Do("POST", "/xrpc/com.atproto.repo.applyWrites", nil, a.Token, in)
	if r.Status != 200 {
		t.Fatalf("applyWrites: %d %s", r.Status, r.Body)
	}
	var out struct {
		Commit  struct{ CID, Rev string } `json:"commit"`
		Results []map[string]any          `json:"results"`
	}
	r.JSON(t, &out)
	if len(out.Results) != 3 || out.Results[0]["$type"] != "com.atproto.repo.applyWrites#createResult" ||
		out.Results[2]["$type"] != "com.atproto.repo.applyWrites#updateResult" || out.Commit.CID == "" {
		t.Fatalf("results %s", r.Body)
	}
	if head := env.Log.Head(); head == 0 {
		t.Fatal("nothing appended")
	}
	var rec recordOut
	getRecord(env, a.DID.String(), old).JSON(t, &rec)
	if rec.Value["text"] != "new" {
		t.Fatalf("update not applied: %+v", rec)
	}
}

func TestWriteErrors(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	b := env.CreateAccount()
	x := tid()
	w := create(t, env, a, x, "x")
	many := make([]any, 201)
	for i := range many {
		many[i] = map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post("p")}
	}
	tests := []struct {
		name    string
		path    string
		token   string
		body    any
		status  int
		errName string
		msg     string
	}{
		{"no auth", "createRecord", "", map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post("x")}, 401, "AuthMissing", ""},
		{"bad token", "createRecord", "nonsense", map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post("x")}, 400, "InvalidToken", ""},
		{"refresh token as access", "createRecord", a.Refresh, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post("x")}, 400, "InvalidToken", ""},
		{"other account's repo", "createRecord", b.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post("x")}, 401, "AuthRequired", ""},
		{"unknown repo", "createRecord", a.Token, map[string]any{"repo": "did:plc:nobody", "collection": "app.bsky.feed.post", "record": post("x")}, 400, "InvalidRequest", "Could not find repo"},
		{"bad collection", "createRecord", a.Token, map[string]any{"repo": a.DID, "collection": "not an nsid", "record": post("x")}, 400, "InvalidRequest", "collection"},
		{"bad rkey", "createRecord", a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": "a/b", "record": post("x")}, 400, "InvalidRequest", "rkey"},
		{"type mismatch", "createRecord", a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.like", "record": post("x")}, 400, "InvalidRequest", "$type"},
		{"float in record", "createRecord", a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": map[string]any{"n": 1.5}}, 400, "InvalidRequest", ""},
		{"missing record", "createRecord", a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post"}, 400, "InvalidRequest", "record"},
		{"existing rkey", "createRecord", a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": x, "record": post("x")}, 400, "InvalidRequest", "exists"},
		{"swapCommit stale", "createRecord", a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post("x"), "swapCommit": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}, 400, "InvalidSwap", ""},
		{"swapRecord stale", "putRecord", a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": x, "record": post("y"), "swapRecord": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}, 400, "InvalidSwap", ""},
		{"bad swap cid", "createRecord", a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post("x"), "swapCommit": "nope"}, 400, "InvalidRequest", "swapCommit"},
		{"too many writes", "applyWrites", a.Token, map[string]any{"repo": a.DID, "writes": many}, 400, "InvalidRequest", "Too many writes"},
		{"malformed json", "createRecord", a.Token, []byte(`{"repo":`), 400, "InvalidRequest", "JSON"},
		{"trailing data", "createRecord", a.Token, []byte(`{} {}`), 400, "InvalidRequest", "trailing"},
		{"too large", "createRecord", a.Token, []byte(`{"repo":"` + strings.Repeat("a", 1_000_001) + `"}`), 413, "PayloadTooLarge", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := env.Log.Head()
			r := env.Do("POST", "/xrpc/com.atproto.repo."+tt.path, nil, tt.token, tt.body)
			if r.Status != tt.status || r.ErrorName() != tt.errName || !strings.Contains(string(r.Body), tt.msg) {
				t.Fatalf("%d %s; want %d %s containing %q", r.Status, r.Body, tt.status, tt.errName, tt.msg)
			}
			if env.Log.Head() != head {
				t.Fatal("a refused write was appended")
			}
		})
	}
	_ = w
	// wrong content type
	req := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, nil)
	if req.Status != 400 || req.ErrorName() != "InvalidRequest" {
		t.Fatalf("no body: %d %s", req.Status, req.Body)
	}
}

// Concurrent writes to one repo serialise into one valid chain; writes to
// different repos proceed in parallel.
func TestConcurrentWrites(t *testing.T) {
	env := apitest.New(t)
	accts := []*apitest.Account{env.CreateAccount(), env.CreateAccount(), env.CreateAccount()}
	var wg sync.WaitGroup
	for i := range 30 {
		a := accts[i%len(accts)]
		wg.Go(func() {
			r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token,
				map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post(fmt.Sprint(i))})
			if r.Status != 200 {
				t.Errorf("write %d: %d %s", i, r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	if err := env.Log.Verify(t.Context(), &eventlog.VerifyOptions{Check: commit.NewVerifier().Check}); err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		r := env.Do("GET", "/xrpc/com.atproto.repo.listRecords", url.Values{"repo": {a.DID.String()}, "collection": {"app.bsky.feed.post"}, "limit": {"100"}}, "", nil)
		if n := strings.Count(string(r.Body), `"uri"`); n != 10 {
			t.Fatalf("%s has %d records, want 10", a.DID, n)
		}
	}
}

// Known record types are validated against the shipped lexicons unless the
// client opts out; unknown ones are accepted as "unknown".
func TestLexiconValidation(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	long := strings.Repeat("é", 301)
	tests := []struct {
		name     string
		coll     string
		rkey     string
		record   map[string]any
		validate any
		status   int
		want     string
	}{
		{"valid post", "app.bsky.feed.post", "", post("hi"), nil, 200, `"validationStatus":"valid"`},
		{"post too long", "app.bsky.feed.post", "", post(long), nil, 400, "Invalid app.bsky.feed.post record"},
		{"post missing createdAt", "app.bsky.feed.post", "", map[string]any{"text": "x"}, nil, 400, "createdAt"},
		{"post too long, validate false", "app.bsky.feed.post", "", post(long), false, 200, `"uri"`},
		{"unknown type", "com.example.thing", "", map[string]any{"anything": "goes"}, nil, 200, `"validationStatus":"unknown"`},
		{"unknown type, validate true", "com.example.thing", "", map[string]any{"anything": "goes"}, true, 400, "Unknown lexicon type"},
		{"profile needs rkey self", "app.bsky.actor.profile", "notself", map[string]any{"displayName": "A"}, nil, 400, "self"},
		{"profile", "app.bsky.actor.profile", "self", map[string]any{"displayName": "A"}, nil, 200, `"validationStatus":"valid"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := map[string]any{"repo": a.DID, "collection": tt.coll, "record": tt.record}
			if tt.rkey != "" {
				in["rkey"] = tt.rkey
			}
			if tt.validate != nil {
				in["validate"] = tt.validate
			}
			r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, in)
			if r.Status != tt.status || !strings.Contains(string(r.Body), tt.want) {
				t.Fatalf("%d %s; want %d containing %q", r.Status, r.Body, tt.status, tt.want)
			}
			if tt.validate == false && strings.Contains(string(r.Body), "validationStatus") {
				t.Fatalf("validate:false must omit validationStatus: %s", r.Body)
			}
		})
	}
}

func TestDescribeRepo(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	create(t, env, a, "", "x")
	r := env.Do("GET", "/xrpc/com.atproto.repo.describeRepo", url.Values{"repo": {a.Handle.String()}}, "", nil)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var out struct {
		Handle      string   `json:"handle"`
		DID         string   `json:"did"`
		Collections []string `json:"collections"`
		DIDDoc      struct {
			VerificationMethod []struct {
				PublicKeyMultibase string `json:"publicKeyMultibase"`
			} `json:"verificationMethod"`
		} `json:"didDoc"`
	}
	r.JSON(t, &out)
	pub, _ := a.Key.PublicKey()
	if out.DID != a.DID.String() || len(out.Collections) != 1 || out.Collections[0] != "app.bsky.feed.post" ||
		len(out.DIDDoc.VerificationMethod) != 1 || out.DIDDoc.VerificationMethod[0].PublicKeyMultibase != pub.Multibase() {
		t.Fatalf("describeRepo %s", r.Body)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.repo.describeRepo", url.Values{"repo": {"nobody.test"}}, "", nil); r.Status != 400 {
		t.Fatalf("unknown repo: %d", r.Status)
	}
}

// The reference's write budget: 5000 points an hour (a create costs 3).
func TestWriteRateLimit(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	b := env.CreateAccount()
	batch := func(acct *apitest.Account) *apitest.Response {
		writes := make([]any, 200)
		for i := range writes {
			writes[i] = map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post("p")}
		}
		return env.Do("POST", "/xrpc/com.atproto.repo.applyWrites", nil, acct.Token, map[string]any{"repo": acct.DID, "writes": writes})
	}
	for i := range 8 { // 8 × 600 = 4800 points
		if r := batch(a); r.Status != 200 {
			t.Fatalf("batch %d: %d %s", i, r.Status, r.Body)
		}
	}
	head := env.Log.Head()
	r := batch(a)
	if r.Status != 429 || r.ErrorName() != "RateLimitExceeded" || r.Header.Get("Retry-After") == "" || r.Header.Get("RateLimit-Remaining") == "" {
		t.Fatalf("over budget: %d %s %v", r.Status, r.Body, r.Header)
	}
	if env.Log.Head() != head {
		t.Fatal("a rate-limited write was appended")
	}
	if r := batch(b); r.Status != 200 {
		t.Fatalf("another account is not limited: %d", r.Status)
	}
}
