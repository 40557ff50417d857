package worker_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
)

// account is a hosted account as the test wrote it.
type account struct {
	handle, did, token string
	oldHandle          string            // the handle it had before (updateHandle)
	status             string            // "", "deactivated", "takendown", "deleted"
	records            map[string]string // current "collection/rkey" -> CID
	gone               []string          // deleted "collection/rkey"
	down               []string          // "collection/rkey" taken down (still in the repo), or taken down and reversed
	blobs              []string          // uploaded blob CIDs (referenced or not)
	revs               []string          // the revs of its commits, in order
}

// world is a pdslog with accounts in every state, mirrored, and the
// Worker over the mirror.
type world struct {
	pds   *pds
	edge  *edge
	accts []*account
	by    map[string]*account // by handle
	big   string              // CID of a blob large enough for a multipart upload
	// taken is a blob taken down (quarantined).
	taken string
}

// blobCID is the CID atproto gives blob bytes (raw, sha-256).
func blobCID(b []byte) string {
	sum := sha256.Sum256(b)
	mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
	return cid.NewCidV1(cid.Raw, mh).String()
}

// newWorld starts the PLC directory, the Worker (Miniflare) and pdslog
// mirroring into it, fills pdslog through XRPC, and waits until the mirror
// has the log's head.
func newWorld(t testing.TB) *world {
	t.Helper()
	plc := plcserver.Start(t)
	port := freePort(t)
	origin := fmt.Sprintf("http://127.0.0.1:%d", port)
	e := startEdge(t, origin, map[string]string{"PUBLIC_URL": fmt.Sprintf("http://localhost:%d", port), "HANDLE_DOMAINS": ".test"})
	p := startPDS(t, e, plc, port)
	w := &world{pds: p, edge: e, by: map[string]*account{}}
	w.fill(t)
	waitMirrored(t, p, e)
	return w
}

func (w *world) pdsClient(t testing.TB) client  { return client{t: t, base: w.pds.URL} }
func (w *world) edgeClient(t testing.TB) client { return client{t: t, base: w.edge.URL} }

// createAccount signs up handle (through c: pdslog or the Worker, which
// forwards it).
func (w *world) createAccount(t testing.TB, c client, handle string) *account {
	t.Helper()
	var out struct{ DID, AccessJwt string }
	c.must("POST", "/xrpc/com.atproto.server.createAccount", "", map[string]any{
		"handle": handle, "email": strings.ReplaceAll(handle, ".", "-") + "@example.com", "password": "hunter22hunter"}, "", &out)
	a := &account{handle: handle, did: out.DID, token: out.AccessJwt, records: map[string]string{}}
	w.accts = append(w.accts, a)
	w.by[handle] = a
	return a
}

type writeResult struct {
	URI    string `json:"uri"`
	CID    string `json:"cid"`
	Commit struct {
		CID string `json:"cid"`
		Rev string `json:"rev"`
	} `json:"commit"`
}

// create writes a record (rkey "" lets pdslog pick one) and returns its path.
func (w *world) create(t testing.TB, c client, a *account, coll, rkey string, rec map[string]any) string {
	t.Helper()
	in := map[string]any{"repo": a.did, "collection": coll, "record": rec}
	if rkey != "" {
		in["rkey"] = rkey
	}
	var out writeResult
	c.must("POST", "/xrpc/com.atproto.repo.createRecord", a.token, in, "", &out)
	u, err := syntax.ParseATURI(out.URI)
	if err != nil {
		t.Fatal(err)
	}
	path := coll + "/" + u.RecordKey().String()
	a.records[path] = out.CID
	a.revs = append(a.revs, out.Commit.Rev)
	return path
}

func (w *world) put(t testing.TB, c client, a *account, path string, rec map[string]any) {
	t.Helper()
	coll, rkey, _ := strings.Cut(path, "/")
	var out writeResult
	c.must("POST", "/xrpc/com.atproto.repo.putRecord", a.token, map[string]any{"repo": a.did, "collection": coll, "rkey": rkey, "record": rec}, "", &out)
	a.records[path] = out.CID
	a.revs = append(a.revs, out.Commit.Rev)
}

func (w *world) delete(t testing.TB, c client, a *account, path string) {
	t.Helper()
	coll, rkey, _ := strings.Cut(path, "/")
	var out writeResult
	c.must("POST", "/xrpc/com.atproto.repo.deleteRecord", a.token, map[string]any{"repo": a.did, "collection": coll, "rkey": rkey}, "", &out)
	delete(a.records, path)
	a.gone = append(a.gone, path)
	a.revs = append(a.revs, out.Commit.Rev)
}

// takedown takes a's record at path down (or reverses that) through the
// admin API, as an operator (or Ozone) does.
func (w *world) takedown(t testing.TB, c client, a *account, path string, applied bool) {
	t.Helper()
	c.must("POST", "/xrpc/com.atproto.admin.updateSubjectStatus", "admin", map[string]any{
		"subject":  map[string]any{"$type": "com.atproto.repo.strongRef", "uri": "at://" + a.did + "/" + path, "cid": a.records[path]},
		"takedown": map[string]any{"applied": applied, "ref": "mod-" + path}}, "", nil)
	if !slices.Contains(a.down, path) {
		a.down = append(a.down, path)
	}
}

// upload uploads b as a's blob and returns its blob object (for records).
func (w *world) upload(t testing.TB, c client, a *account, b []byte, mime string) map[string]any {
	t.Helper()
	var out struct {
		Blob map[string]any `json:"blob"`
	}
	c.must("POST", "/xrpc/com.atproto.repo.uploadBlob", a.token, b, mime, &out)
	ref := out.Blob["ref"].(map[string]any)["$link"].(string)
	if ref != blobCID(b) {
		t.Fatalf("uploadBlob: CID %s, want %s", ref, blobCID(b))
	}
	a.blobs = append(a.blobs, ref)
	return out.Blob
}

func post(text string, extra map[string]any) map[string]any {
	rec := map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-26T12:00:00.000Z"}
	for k, v := range extra {
		rec[k] = v
	}
	return rec
}

func images(bs ...map[string]any) map[string]any {
	var list []any
	for _, b := range bs {
		list = append(list, map[string]any{"image": b, "alt": "a <picture> & more"})
	}
	return map[string]any{"embed": map[string]any{"$type": "app.bsky.embed.images", "images": list}}
}

// pseudo returns n deterministic pseudo-random bytes.
func pseudo(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// Texts whose JSON escapes differ between encoders: HTML characters, the
// JavaScript line separators, controls, quotes, astral characters.
var texts = []string{
	"hello <b>world</b> & friends",
	"line\u2028separator\u2029paragraph",
	"emoji 🦋, é, 中文, \U0001F600",
	"tab\there \"quoted\" back\\slash \u0001\u001f\u007f",
	"\ufeffstarts with a BOM",
	"plain",
}

// fill writes the world: accounts in every state, records created,
// updated and deleted in several collections (enough to page through),
// blobs referenced, unreferenced, taken down and large, a record too large
// for a D1 row, and a deleted account. Bob writes through the Worker
// (which forwards writes to pdslog).
func (w *world) fill(t testing.TB) {
	t.Helper()
	pc, ec := w.pdsClient(t), w.edgeClient(t)
	alice := w.createAccount(t, pc, "alice.test")
	bob := w.createAccount(t, ec, "bob.test")
	carol := w.createAccount(t, pc, "carol.test")
	dave := w.createAccount(t, pc, "dave.test")
	erin := w.createAccount(t, pc, "erin.test")
	frank := w.createAccount(t, pc, "frank.test") // no records; a new handle
	pc.must("POST", "/xrpc/com.atproto.identity.updateHandle", frank.token, map[string]any{"handle": "franky.test"}, "", nil)
	frank.oldHandle, frank.handle = frank.handle, "franky.test"
	w.by[frank.handle] = frank

	png := func(seed byte, n int) []byte {
		return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), pseudo(n, seed)...)
	}
	avatar := w.upload(t, pc, alice, png(1, 3000), "image/png")
	pic := w.upload(t, pc, alice, png(2, 5000), "image/png")
	dropped := w.upload(t, pc, alice, png(3, 700), "image/png")
	w.upload(t, pc, alice, png(4, 900), "image/png") // never referenced
	big := pseudo(17<<20, 5)                         // over the 16 MiB part size: a multipart upload to R2
	bigBlob := w.upload(t, pc, alice, big, "application/octet-stream")
	w.big = blobCID(big)

	w.create(t, pc, alice, "app.bsky.actor.profile", "self", map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice <&>", "avatar": avatar})
	var posts []string
	for i := range 27 {
		extra := map[string]any(nil)
		switch i {
		case 3:
			extra = images(pic)
		case 5:
			extra = images(dropped)
		case 7:
			extra = images(pic, avatar)
		case 9:
			extra = map[string]any{"embed": map[string]any{"$type": "com.example.file", "file": bigBlob}}
		}
		posts = append(posts, w.create(t, pc, alice, "app.bsky.feed.post", "", post(fmt.Sprintf("%s #%d", texts[i%len(texts)], i), extra)))
	}
	w.put(t, pc, alice, posts[2], post("edited <again>", nil))
	w.delete(t, pc, alice, posts[5]) // its blob is no longer referenced
	w.delete(t, pc, alice, posts[11])
	// Collections whose URIs sort otherwise than their names.
	w.create(t, pc, alice, "com.example.thing", "a", map[string]any{"$type": "com.example.thing", "n": 1, "neg": -42, "big": int64(1) << 60})
	w.create(t, pc, alice, "com.example.thing.sub", "b", map[string]any{"$type": "com.example.thing.sub", "bytes": map[string]any{"$bytes": "aGVsbG8"}, "list": []any{true, false, nil, "x"}})
	w.create(t, pc, alice, "com.example.thing-x.y", "c", map[string]any{"$type": "com.example.thing-x.y", "link": map[string]any{"$link": alice.records[posts[0]]}})
	// A record whose JSON is over D1's inline limit (1 MB): the mirror
	// keeps no JSON for it, and its block is in R2. Its JSON body is
	// written by hand: Go's encoder would escape it over pdslog's 1 MB.
	huge := `{"repo":"` + alice.did + `","collection":"com.example.big","rkey":"huge","record":{"$type":"com.example.big","text":"` +
		strings.Repeat("\u2028<", 240_000) + `"}}`
	var out writeResult
	pc.must("POST", "/xrpc/com.atproto.repo.createRecord", alice.token, []byte(huge), "application/json", &out)
	alice.records["com.example.big/huge"] = out.CID
	alice.revs = append(alice.revs, out.Commit.Rev)

	for i := range 6 {
		w.create(t, ec, bob, "app.bsky.feed.post", "", post(fmt.Sprintf("bob %d %s", i, texts[i%len(texts)]), nil))
	}
	bobPic := w.upload(t, ec, bob, png(6, 1200), "image/png")
	w.create(t, ec, bob, "app.bsky.feed.post", "", post("bob's picture", images(bobPic)))
	like := map[string]any{"$type": "app.bsky.feed.like", "createdAt": "2026-11-26T12:00:00.000Z",
		"subject": map[string]any{"uri": "at://" + alice.did + "/" + posts[0], "cid": alice.records[posts[0]]}}
	w.create(t, ec, bob, "app.bsky.feed.like", "", like)
	// Record takedowns: a post of alice's stays down (within the pages
	// of her posts), one is taken down and reversed, one is taken down,
	// deleted and made again at its path (served again: the takedown went
	// with the record); one of bob's stays down.
	w.takedown(t, pc, alice, posts[4], true)
	w.takedown(t, pc, alice, posts[6], true)
	w.takedown(t, pc, alice, posts[6], false)
	thing := func(n int) map[string]any { return map[string]any{"$type": "com.example.thing", "n": n} }
	again := w.create(t, pc, alice, "com.example.thing", "again", thing(1))
	w.takedown(t, pc, alice, again, true)
	w.delete(t, pc, alice, again)
	w.create(t, pc, alice, "com.example.thing", "again", thing(2))
	bobDown := w.create(t, ec, bob, "app.bsky.feed.post", "", post("bob, taken down", nil))
	w.create(t, ec, bob, "app.bsky.feed.post", "", post("bob, after", nil))
	w.takedown(t, pc, bob, bobDown, true)
	w.taken = bobPic["ref"].(map[string]any)["$link"].(string)
	pc.must("POST", "/xrpc/com.atproto.admin.updateSubjectStatus", "admin", map[string]any{
		"subject":  map[string]any{"$type": "com.atproto.admin.defs#repoBlobRef", "did": bob.did, "cid": w.taken},
		"takedown": map[string]any{"applied": true}}, "", nil)

	for _, a := range []*account{carol, dave, erin} {
		for i := range 3 {
			w.create(t, pc, a, "app.bsky.feed.post", "", post(fmt.Sprintf("%s %d", a.handle, i), nil))
		}
	}
	for i, a := range []*account{carol, dave, erin} {
		b := w.upload(t, pc, a, png(byte(7+i), 800), "image/png")
		p := w.create(t, pc, a, "app.bsky.feed.post", "", post("with a picture", images(b)))
		// A record taken down in each account later made inactive or
		// deleted: the account's gate answers first; a deleted account's
		// takedowns go with it.
		w.takedown(t, pc, a, p, true)
	}
	pc.must("POST", "/xrpc/com.atproto.server.deactivateAccount", carol.token, map[string]any{}, "", nil)
	carol.status = "deactivated"
	pc.must("POST", "/xrpc/com.atproto.admin.updateSubjectStatus", "admin", map[string]any{
		"subject":  map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": dave.did},
		"takedown": map[string]any{"applied": true}}, "", nil)
	dave.status = "takendown"
	pc.must("POST", "/xrpc/com.atproto.admin.deleteAccount", "admin", map[string]any{"did": erin.did}, "", nil)
	erin.status = "deleted"
}

// q is a query string of name, value pairs.
func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		t.Fatalf("%v: %.300s", err, b)
	}
}
