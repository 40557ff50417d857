package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/coder/websocket"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
	"github.com/pdslog/pdslog/projections/mirror/d1"

	"github.com/pdslog/pdslog/projections/testenv"
)

// A read asked of both pdslog and the Worker.
type read struct {
	path   string            // path and query
	header map[string]string // request headers ("Host" sets the Host)
	// mirror: the Worker must answer it from the mirror; forward: it must
	// send it to the origin. Neither: either is right.
	mirror, forward bool
}

// answer is what one server answered.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func get(t testing.TB, base string, r read) answer {
	t.Helper()
	req, err := http.NewRequest("GET", base+r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", base, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: reading the body: %v", base, r.path, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// compared are the response headers that must be equal; Content-Length is
// compared where pdslog sets it itself (getBlob).
var compared = []string{"Content-Type", "Content-Disposition", "Content-Security-Policy", "X-Content-Type-Options",
	"Accept-Ranges", "Etag", "Content-Range", "Atproto-Repo-Rev", "Vary", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers"}

func method(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return strings.TrimPrefix(p, "/xrpc/")
}

// reads are the calls the differential test makes: every read method on
// every account (by DID and by handle, in every state), records present,
// updated, deleted and absent, pages of lists, getRepo since many revs,
// blobs whole and in ranges, parameters pdslog refuses, and CORS.
func (w *world) reads(t testing.TB) []read {
	var rs []read
	add := func(mirror bool, path string) { rs = append(rs, read{path: path, mirror: mirror}) }
	unknown := []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:web:nobody.example.com"}
	alice := w.by["alice.test"]
	for _, a := range w.accts {
		ids := []string{a.did, a.handle, strings.ToUpper(a.handle)}
		if a.oldHandle != "" {
			ids = append(ids, a.oldHandle)
		}
		for _, id := range ids {
			rs = append(rs, read{path: "/xrpc/com.atproto.repo.describeRepo?" + q("repo", id), mirror: true},
				read{path: "/xrpc/com.atproto.repo.listRecords?" + q("repo", id, "collection", "app.bsky.feed.post"), mirror: true},
				// Not served here: the origin's, gated as the repo reads.
				read{path: "/xrpc/com.atproto.identity.resolveHandle?" + q("handle", id), forward: true})
		}
		did := a.did
		for _, m := range []string{"getLatestCommit", "getRepoStatus", "getRepo", "listBlobs"} {
			add(true, "/xrpc/com.atproto.sync."+m+"?"+q("did", did))
		}
		paths := slices.Sorted(func(yield func(string) bool) {
			for p := range a.records {
				if !yield(p) {
					return
				}
			}
		})
		paths = append(paths, a.gone...)
		paths = append(paths, "app.bsky.feed.post/nonexistent", "com.example.none/self")
		// A repo not hosted (a deleted account's): getRecord goes to the
		// origin, which passes it through to the AppView (issue 19).
		hosted := a.status != "deleted"
		for _, p := range paths {
			coll, rkey, _ := strings.Cut(p, "/")
			rs = append(rs, read{path: "/xrpc/com.atproto.repo.getRecord?" + q("repo", did, "collection", coll, "rkey", rkey), mirror: hosted, forward: !hosted})
			add(true, "/xrpc/com.atproto.sync.getRecord?"+q("did", did, "collection", coll, "rkey", rkey))
		}
		colls := map[string]bool{}
		for p, c := range a.records {
			coll, rkey, _ := strings.Cut(p, "/")
			colls[coll] = true
			if !colls["cid:"+coll] {
				colls["cid:"+coll] = true
				rs = append(rs, read{path: "/xrpc/com.atproto.repo.getRecord?" + q("repo", a.handle, "collection", coll, "rkey", rkey, "cid", c), mirror: hosted, forward: !hosted})
				for _, other := range alice.records {
					if other != c {
						rs = append(rs, read{path: "/xrpc/com.atproto.repo.getRecord?" + q("repo", did, "collection", coll, "rkey", rkey, "cid", other), mirror: hosted, forward: !hosted})
						break
					}
				}
			}
		}
		// Records taken down (or taken down and reversed): by handle, with
		// their CID, and the pages of their collection around them.
		for _, p := range a.down {
			coll, rkey, _ := strings.Cut(p, "/")
			rs = append(rs, read{path: "/xrpc/com.atproto.repo.getRecord?" + q("repo", a.handle, "collection", coll, "rkey", rkey), mirror: hosted, forward: !hosted},
				read{path: "/xrpc/com.atproto.repo.getRecord?" + q("repo", did, "collection", coll, "rkey", rkey, "cid", a.records[p]), mirror: hosted, forward: !hosted})
			for _, l := range []string{"1", "2", "3"} {
				for _, rev := range []string{"false", "true"} {
					rs = append(rs, read{path: "/xrpc/com.atproto.repo.listRecords?" + q("repo", did, "collection", coll, "limit", l, "reverse", rev), mirror: true},
						read{path: "/xrpc/com.atproto.repo.listRecords?" + q("repo", did, "collection", coll, "limit", l, "reverse", rev, "cursor", rkey), mirror: true})
				}
			}
		}
		for coll := range colls {
			if !strings.HasPrefix(coll, "cid:") {
				rs = append(rs, read{path: "/xrpc/com.atproto.repo.listRecords?" + q("repo", did, "collection", coll, "reverse", "true"), mirror: true})
			}
		}
		// getRepo and listBlobs since: before everything, each rev (the
		// last: only the commit), between revs, after everything.
		sinces := []string{"2222222222222", "jzzzzzzzzzzzz"}
		for i, rev := range a.revs {
			sinces = append(sinces, rev)
			if i%3 == 1 {
				sinces = append(sinces, rev[:len(rev)-1]+"z") // between this rev and the next
			}
		}
		for _, s := range sinces {
			add(true, "/xrpc/com.atproto.sync.getRepo?"+q("did", did, "since", s))
			add(true, "/xrpc/com.atproto.sync.listBlobs?"+q("did", did, "since", s))
		}
		for _, b := range a.blobs {
			add(true, "/xrpc/com.atproto.sync.getBlob?"+q("did", did, "cid", b))
		}
		for _, l := range []string{"1", "2", "3"} {
			add(true, "/xrpc/com.atproto.sync.listBlobs?"+q("did", did, "limit", l))
			if len(a.blobs) > 0 {
				add(true, "/xrpc/com.atproto.sync.listBlobs?"+q("did", did, "limit", l, "cursor", a.blobs[0]))
			}
		}
		var cids []string
		for _, c := range a.records {
			cids = append(cids, c)
			if len(cids) == 3 {
				break
			}
		}
		if len(cids) > 0 {
			add(true, "/xrpc/com.atproto.sync.getBlocks?"+q("did", did, "cids", cids[0]))
			add(true, "/xrpc/com.atproto.sync.getBlocks?"+q(append([]string{"did", did}, pairs("cids", append(cids, cids[0]))...)...))
			add(true, "/xrpc/com.atproto.sync.getBlocks?"+q("did", did, "cids", cids[0], "cids", blobCID([]byte("not a block")), "cids", blobCID([]byte("nor this"))))
		}
	}
	for _, d := range unknown {
		for _, m := range []string{"getLatestCommit", "getRepoStatus", "getRepo", "listBlobs"} {
			add(true, "/xrpc/com.atproto.sync."+m+"?"+q("did", d))
		}
		add(true, "/xrpc/com.atproto.repo.describeRepo?"+q("repo", d))
		rs = append(rs, read{path: "/xrpc/com.atproto.repo.getRecord?" + q("repo", d, "collection", "app.bsky.feed.post", "rkey", "x"), forward: true})
		add(true, "/xrpc/com.atproto.sync.getBlob?"+q("did", d, "cid", w.big))
	}
	add(true, "/xrpc/com.atproto.repo.describeRepo?"+q("repo", "nobody.test"))

	// Pages: alice's posts through every limit, both ways, to the end.
	for _, rev := range []string{"", "true"} {
		for _, l := range []string{"1", "4", "10", "50", "100"} {
			cursor := ""
			for range 30 {
				args := []string{"repo", alice.did, "collection", "app.bsky.feed.post", "limit", l}
				if rev != "" {
					args = append(args, "reverse", rev)
				}
				if cursor != "" {
					args = append(args, "cursor", cursor)
				}
				p := "/xrpc/com.atproto.repo.listRecords?" + q(args...)
				add(true, p)
				a := get(t, w.pds.URL, read{path: p})
				var page struct{ Cursor string }
				mustJSON(t, a.body, &page)
				if page.Cursor == "" {
					break
				}
				cursor = page.Cursor
			}
		}
	}
	for _, l := range []string{"1", "2", "5", "1000"} {
		cursor := ""
		for range 10 {
			args := []string{"limit", l}
			if cursor != "" {
				args = append(args, "cursor", cursor)
			}
			p := "/xrpc/com.atproto.sync.listRepos?" + q(args...)
			add(true, p)
			a := get(t, w.pds.URL, read{path: p})
			var page struct{ Cursor string }
			mustJSON(t, a.body, &page)
			if page.Cursor == "" {
				break
			}
			cursor = page.Cursor
		}
	}
	add(true, "/xrpc/com.atproto.sync.listRepos")

	// Blob ranges, on a small blob and on the large one.
	small := alice.blobs[0]
	for _, rg := range []string{"bytes=0-9", "bytes=-5", "bytes=10-", "bytes=0-0", "bytes=1-+3", "bytes=+2-", "bytes=-99999999",
		"bytes=5-2", "bytes=99999999-", "bytes=-0", "bytes=0-1,3-4", "bytes=abc", "items=0-1", "bytes= 3-4 ", "bytes=x-3"} {
		rs = append(rs, read{path: "/xrpc/com.atproto.sync.getBlob?" + q("did", alice.did, "cid", small), header: map[string]string{"Range": rg}, mirror: true})
	}
	// The large blob (two parts in R2): across the parts' boundary, and the ends.
	for _, rg := range []string{"bytes=16777200-16777300", "bytes=0-9", "bytes=-5", "bytes=99999999-"} {
		rs = append(rs, read{path: "/xrpc/com.atproto.sync.getBlob?" + q("did", alice.did, "cid", w.big), header: map[string]string{"Range": rg}, mirror: true})
	}
	// The blob taken down, and another account's blob.
	add(true, "/xrpc/com.atproto.sync.getBlob?"+q("did", w.by["bob.test"].did, "cid", w.taken))
	add(true, "/xrpc/com.atproto.sync.getBlob?"+q("did", w.by["bob.test"].did, "cid", small))

	// /.well-known/atproto-did by Host.
	for _, h := range []string{"alice.test", "ALICE.test", "bob.test:8080", "carol.test", "dave.test", "erin.test", "frank.test", "franky.test",
		"nobody.test", "example.com", "localhost", "[::1]:80"} {
		rs = append(rs, read{path: "/.well-known/atproto-did", header: map[string]string{"Host": h}, mirror: true})
	}

	// CORS.
	for _, o := range []string{"https://app.example.com", "null"} {
		rs = append(rs, read{path: "/xrpc/com.atproto.sync.getLatestCommit?" + q("did", alice.did), header: map[string]string{"Origin": o}, mirror: true},
			read{path: "/xrpc/com.atproto.repo.getRecord?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "rkey", "nonexistent"), header: map[string]string{"Origin": o}, mirror: true})
	}

	// Parameters pdslog refuses (or reads otherwise than at face value):
	// the origin answers them.
	for _, p := range []string{
		"/xrpc/com.atproto.repo.describeRepo",
		"/xrpc/com.atproto.repo.describeRepo?repo=bad!",
		"/xrpc/com.atproto.repo.describeRepo?repo=did:x",
		"/xrpc/com.atproto.repo.getRecord?" + q("repo", alice.did, "collection", "app.bsky.feed.post"),
		"/xrpc/com.atproto.repo.getRecord?" + q("repo", alice.did, "collection", "not-an-nsid", "rkey", "x"),
		"/xrpc/com.atproto.repo.getRecord?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "rkey", ".."),
		"/xrpc/com.atproto.repo.getRecord?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "rkey", "x", "cid", "notacid"),
		"/xrpc/com.atproto.repo.getRecord?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "rkey", "x", "cid", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"),
		"/xrpc/com.atproto.repo.listRecords?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "limit", "0"),
		"/xrpc/com.atproto.repo.listRecords?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "limit", "101"),
		"/xrpc/com.atproto.repo.listRecords?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "limit", "+5"),
		"/xrpc/com.atproto.repo.listRecords?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "reverse", "maybe"),
		"/xrpc/com.atproto.repo.listRecords?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "cursor", "a/b"),
		"/xrpc/com.atproto.repo.listRecords?" + q("repo", alice.did, "collection", "app.bsky.feed.post", "pretty", "1"),
		"/xrpc/com.atproto.sync.getLatestCommit?did=notadid",
		"/xrpc/com.atproto.sync.getLatestCommit",
		"/xrpc/com.atproto.sync.getRepo?" + q("did", alice.did, "since", "notatid"),
		"/xrpc/com.atproto.sync.listRepos?cursor=notadid",
		"/xrpc/com.atproto.sync.listRepos?limit=1001",
		"/xrpc/com.atproto.sync.getBlob?" + q("did", alice.did),
		"/xrpc/com.atproto.sync.getBlocks?" + q("did", alice.did),
		"/xrpc/com.atproto.sync.getBlocks?" + q("did", alice.did, "cids", "nope"),
		"/xrpc/com.atproto.sync.listBlobs?" + q("did", alice.did, "since", "x"),
		"/xrpc/com.atproto.sync.getRecord?" + q("did", alice.did, "collection", "app.bsky.feed.post"),
	} {
		rs = append(rs, read{path: p, forward: true})
	}
	// Odd but valid query strings, read as Go reads them.
	rs = append(rs,
		read{path: "/xrpc/com.atproto.repo.describeRepo?repo=" + alice.did + "&repo=" + w.by["bob.test"].did, mirror: true},
		read{path: "/xrpc/com.atproto.repo.listRecords?repo=" + alice.handle + "&collection=app.bsky.feed.post&limit=%32", mirror: true},
		read{path: "/xrpc/com.atproto.repo.listRecords?repo=" + alice.handle + "&collection=app.bsky.feed.post&x;y=1&limit=1", mirror: true},
		read{path: "/xrpc/com.atproto.repo.listRecords?repo=" + alice.handle + "&collection=app.bsky.feed.post&limit=%zz&limit=3", mirror: true},
		read{path: "/xrpc/com.atproto.sync.listBlobs?" + q("did", alice.did, "cursor", "zz<&>"), mirror: true},
	)
	// Not served here: the origin's.
	for _, p := range []string{"/xrpc/com.atproto.server.describeServer", "/xrpc/com.atproto.identity.resolveHandle?handle=alice.test",
		"/xrpc/com.atproto.repo.getRecord/", "/xrpc/com.atproto.sync.getRepo%3Fdid=x", "/.well-known/did.json", "/nope"} {
		rs = append(rs, read{path: p, forward: true})
	}
	return rs
}

func pairs(name string, vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, name, v)
	}
	return out
}

// TestEdgeAnswersAsPdslog fills a real pdslog (accounts active,
// deactivated, taken down and deleted; records created, updated, deleted,
// taken down and taken down then reversed; blobs referenced, dropped,
// taken down, and one uploaded to R2 in parts; a record too large for a
// D1 row), lets its mirror copy the log
// into Miniflare's D1 and R2, then asks pdslog and the Worker the same
// reads: status, the headers above and the bytes must be identical, and
// the reads the Worker can answer must come from the mirror. CARs are
// parsed and verified (block hashes, the signed commit, the tree) against
// the root getLatestCommit names.
func TestEdgeAnswersAsPdslog(t *testing.T) {
	testenv.Slow(t, "runs npm/Node.js (Miniflare, a PLC directory) and a pdslog binary")
	start := time.Now()
	w := newWorld(t)
	t.Logf("pdslog filled and mirrored in %v", time.Since(start).Round(time.Millisecond))
	w.checkGates(t)
	start = time.Now()
	served := map[string]int{}
	forwarded := 0
	rs := w.reads(t)
	for _, r := range rs {
		want := get(t, w.pds.URL, r)
		got := get(t, w.edge.URL, r)
		src := got.header.Get("X-Pdslog-Edge")
		switch {
		case r.mirror && src != "mirror":
			t.Errorf("%s %v: answered by %q, want the mirror (status %d: %.300s)", r.path, r.header, src, got.status, got.body)
		case r.forward && src != "origin":
			t.Errorf("%s %v: answered by %q, want the origin", r.path, r.header, src)
		}
		if src == "mirror" {
			served[method(r.path)]++
		} else {
			forwarded++
		}
		if got.status != want.status {
			t.Errorf("%s %v: status %d, pdslog %d\nworker: %.500s\npdslog: %.500s", r.path, r.header, got.status, want.status, got.body, want.body)
			continue
		}
		for _, h := range compared {
			if g, p := strings.Join(got.header.Values(h), ", "), strings.Join(want.header.Values(h), ", "); g != p {
				t.Errorf("%s %v: header %s %q, pdslog %q", r.path, r.header, h, g, p)
			}
		}
		if strings.Contains(r.path, "sync.getBlob") && want.status < 300 && want.header.Get("Content-Length") != got.header.Get("Content-Length") {
			t.Errorf("%s %v: Content-Length %q, pdslog %q", r.path, r.header, got.header.Get("Content-Length"), want.header.Get("Content-Length"))
		}
		if !bytes.Equal(got.body, want.body) {
			t.Errorf("%s %v: body differs (%d bytes, pdslog %d)\nworker: %.600s\npdslog: %.600s", r.path, r.header, len(got.body), len(want.body), got.body, want.body)
			continue
		}
		if src == "mirror" {
			checkCache(t, r, got)
		}
		if got.status == 200 && got.header.Get("Content-Type") == "application/vnd.ipld.car" {
			w.checkCAR(t, r, got.body)
		}
	}
	t.Logf("%d reads compared in %v", len(rs), time.Since(start).Round(time.Millisecond))
	t.Logf("served from the mirror: %v; forwarded: %d", served, forwarded)
	for _, m := range []string{"com.atproto.repo.getRecord", "com.atproto.repo.listRecords", "com.atproto.repo.describeRepo",
		"com.atproto.sync.getLatestCommit", "com.atproto.sync.getRepoStatus", "com.atproto.sync.listRepos", "com.atproto.sync.getRecord",
		"com.atproto.sync.getRepo", "com.atproto.sync.getBlocks", "com.atproto.sync.getBlob", "com.atproto.sync.listBlobs", "/.well-known/atproto-did"} {
		if served[m] < 3 {
			t.Errorf("%s: %d reads served from the mirror: the test does not reach it", m, served[m])
		}
	}
	t.Run("forwarded", w.checkForwarded)
	t.Run("backfill", w.checkBackfill)
}

// checkBackfill: while the mirror reads the log again for record takedowns
// (a mirror_backfill row, as migration 0003 leaves on a database mirrored
// before it), getRecord and listRecords go to the origin; the other reads
// are still served from the mirror.
func (w *world) checkBackfill(t *testing.T) {
	db, err := d1.New(d1.Options{APIBase: w.edge.Harness + "/client/v4", AccountID: cfAccount, DatabaseID: d1ID, Token: cfToken, Budget: -1})
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) {
		if _, err := db.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	exec("INSERT INTO mirror_backfill (name, upto, cursor) VALUES ('cloudflare', 1000000, 0)")
	defer exec("DELETE FROM mirror_backfill WHERE name = 'cloudflare'")
	alice := w.by["alice.test"]
	coll, rkey, _ := strings.Cut(alice.down[0], "/")
	for _, c := range []struct {
		path, source string
	}{
		{"/xrpc/com.atproto.repo.getRecord?" + q("repo", alice.did, "collection", coll, "rkey", rkey), "origin"},
		{"/xrpc/com.atproto.repo.listRecords?" + q("repo", alice.did, "collection", coll, "limit", "3"), "origin"},
		{"/xrpc/com.atproto.repo.describeRepo?" + q("repo", alice.did), "mirror"},
	} {
		want, got := get(t, w.pds.URL, read{path: c.path}), get(t, w.edge.URL, read{path: c.path})
		if src := got.header.Get("X-Pdslog-Edge"); src != c.source {
			t.Errorf("%s during a backfill: answered by %q, want the %s", c.path, src, c.source)
		}
		if got.status != want.status || !bytes.Equal(got.body, want.body) {
			t.Errorf("%s during a backfill: %d %.200s, pdslog %d %.200s", c.path, got.status, got.body, want.status, want.body)
		}
	}
}

// checkGates: the world reaches what the Worker must gate as pdslog
// does: pdslog hides a record taken down and serves one whose takedown
// was reversed, or that was made again after a takedown, and answers
// others than the owner with the reference's errors for the deactivated
// and the taken-down accounts.
func (w *world) checkGates(t *testing.T) {
	alice, carol, dave := w.by["alice.test"], w.by["carol.test"], w.by["dave.test"]
	status := func(path string) string {
		a := get(t, w.pds.URL, read{path: path})
		var e struct{ Error string }
		if a.status != 200 {
			mustJSON(t, a.body, &e)
		}
		return fmt.Sprint(a.status, " ", e.Error)
	}
	record := func(a *account, path string) string {
		coll, rkey, _ := strings.Cut(path, "/")
		return status("/xrpc/com.atproto.repo.getRecord?" + q("repo", a.did, "collection", coll, "rkey", rkey))
	}
	for _, c := range []struct{ got, want string }{
		{record(alice, alice.down[0]), "400 RecordNotFound"},
		{record(alice, alice.down[1]), "200 "},
		{record(alice, "com.example.thing/again"), "200 "},
		{record(carol, carol.down[0]), "400 RecordNotFound"},
		{status("/xrpc/com.atproto.repo.describeRepo?" + q("repo", carol.did)), "400 RepoDeactivated"},
		{status("/xrpc/com.atproto.repo.describeRepo?" + q("repo", dave.handle)), "400 RepoTakendown"},
		{status("/xrpc/com.atproto.repo.listRecords?" + q("repo", dave.did, "collection", "app.bsky.feed.post")), "400 InvalidRequest"},
		{status("/xrpc/com.atproto.identity.resolveHandle?" + q("handle", carol.handle)), "400 HandleNotFound"},
	} {
		if c.got != c.want {
			t.Errorf("pdslog answers %s, the test expects %s: the world does not reach the gate it tests", c.got, c.want)
		}
	}
}

// do makes one request, with headers ("basic" sets HTTP basic auth to
// user:password).
func do(t testing.TB, method, url string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "basic" {
			user, pass, _ := strings.Cut(v, ":")
			req.SetBasicAuth(user, pass)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// checkForwarded: what the mirror may not answer reaches the origin and
// comes back as the origin answered it: reads with credentials (an
// owner's, the admin's, wrong ones), preflights, HEAD, writes, and the
// firehose's websocket.
func (w *world) checkForwarded(t *testing.T) {
	alice, carol, dave := w.by["alice.test"], w.by["carol.test"], w.by["dave.test"]
	cases := []struct {
		method, path string
		header       map[string]string
		status       int // what pdslog answers
	}{
		{"GET", "/xrpc/com.atproto.sync.getRepo?" + q("did", dave.did), map[string]string{"basic": "admin:" + adminPass}, 200},
		{"GET", "/xrpc/com.atproto.sync.getLatestCommit?" + q("did", carol.did), map[string]string{"basic": "admin:" + adminPass}, 200},
		{"GET", "/xrpc/com.atproto.sync.getLatestCommit?" + q("did", carol.did), map[string]string{"basic": "admin:wrong"}, 401},
		{"GET", "/xrpc/com.atproto.sync.getLatestCommit?" + q("did", alice.did), map[string]string{"Authorization": "Bearer " + alice.token}, 200},
		{"GET", "/xrpc/com.atproto.repo.getRecord?" + q("repo", alice.did, "collection", "app.bsky.actor.profile", "rkey", "self"),
			map[string]string{"Authorization": "Bearer not-a-token"}, 400},
		{"GET", "/xrpc/com.atproto.repo.getRecord?" + q("repo", alice.did, "collection", "app.bsky.actor.profile", "rkey", "self"),
			map[string]string{"atproto-proxy": "did:web:api.bsky.app#bsky_appview"}, 200},
		{"OPTIONS", "/xrpc/com.atproto.sync.getBlob?" + q("did", alice.did, "cid", alice.blobs[0]),
			map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}, 204},
		{"HEAD", "/xrpc/com.atproto.sync.getBlob?" + q("did", alice.did, "cid", alice.blobs[0]), nil, 501},
		{"POST", "/xrpc/com.atproto.repo.createRecord", map[string]string{"Content-Type": "application/json"}, 401},
	}
	for _, c := range cases {
		want := do(t, c.method, w.pds.URL+c.path, c.header)
		got := do(t, c.method, w.edge.URL+c.path, c.header)
		if src := got.header.Get("X-Pdslog-Edge"); src != "origin" {
			t.Errorf("%s %s %v: answered by %q, want the origin", c.method, c.path, c.header, src)
		}
		if want.status != c.status {
			t.Errorf("%s %s %v: pdslog answers %d, the test expects %d: %.200s", c.method, c.path, c.header, want.status, c.status, want.body)
		}
		if got.status != want.status || !bytes.Equal(got.body, want.body) {
			t.Errorf("%s %s %v: %d %.200s, pdslog %d %.200s", c.method, c.path, c.header, got.status, got.body, want.status, want.body)
		}
		for _, h := range append(compared, "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age", "Allow") {
			if g, p := strings.Join(got.header.Values(h), ", "), strings.Join(want.header.Values(h), ", "); g != p {
				t.Errorf("%s %s: header %s %q, pdslog %q", c.method, c.path, h, g, p)
			}
		}
	}

	// The firehose, through the Worker, frame for frame.
	frames := func(base string) [][]byte {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/xrpc/com.atproto.sync.subscribeRepos?cursor=0", nil)
		if err != nil {
			t.Fatalf("subscribeRepos at %s: %v", base, err)
		}
		defer conn.CloseNow()
		conn.SetReadLimit(8 << 20)
		var out [][]byte
		for range 5 {
			_, b, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("subscribeRepos at %s: frame %d: %v", base, len(out), err)
			}
			out = append(out, b)
		}
		return out
	}
	want, got := frames(w.pds.URL), frames(w.edge.URL)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("firehose frame %d through the Worker differs (%d bytes, pdslog %d)", i, len(got[i]), len(want[i]))
		}
	}
}

// checkCache: content-addressed answers may be kept a day, the rest a few
// seconds.
func checkCache(t *testing.T, r read, a answer) {
	t.Helper()
	cc := a.header.Get("Cache-Control")
	m := method(r.path)
	immutable := (m == "com.atproto.sync.getBlob" || m == "com.atproto.sync.getBlocks") && a.status < 300
	switch {
	case immutable && cc != "public, max-age=86400, immutable":
		t.Errorf("%s %v: Cache-Control %q for a content-addressed answer", r.path, r.header, cc)
	case !immutable && cc != "public, max-age=5":
		t.Errorf("%s %v: Cache-Control %q, want a short max-age", r.path, r.header, cc)
	}
}

// checkCAR parses a CAR answer and checks every block against its CID;
// for getRepo and sync.getRecord also the root (the latest commit), the
// commit's signature under the account's key, and the tree: the whole
// repo's records, or the record's presence or absence.
func (w *world) checkCAR(t *testing.T, r read, b []byte) {
	t.Helper()
	roots, blocks, err := car.Unmarshal(b, nil)
	if err != nil {
		t.Errorf("%s: CAR: %v", r.path, err)
		return
	}
	src := mst.MemBlocks{}
	for _, blk := range blocks {
		sum := sha256.Sum256(blk.Data)
		mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
		if !cid.NewCidV1(blk.CID.Type(), mh).Equals(blk.CID) {
			t.Errorf("%s: block %s does not hash to its CID", r.path, blk.CID)
		}
		src[blk.CID] = blk.Data
	}
	m := method(r.path)
	if m == "com.atproto.sync.getBlocks" {
		return
	}
	var a *account
	for _, x := range w.accts {
		if strings.Contains(r.path, "did="+strings.ReplaceAll(x.did, ":", "%3A")) {
			a = x
		}
	}
	if a == nil {
		t.Fatalf("%s: no account", r.path)
	}
	var head struct{ CID, Rev string }
	mustJSON(t, get(t, w.pds.URL, read{path: "/xrpc/com.atproto.sync.getLatestCommit?" + q("did", a.did)}).body, &head)
	if len(roots) != 1 || roots[0].String() != head.CID || len(blocks) == 0 || blocks[0].CID.String() != head.CID {
		t.Errorf("%s: roots %v, first block %v; want the latest commit %s", r.path, roots, blocks[0].CID, head.CID)
		return
	}
	commit, err := atdata.UnmarshalCBOR(blocks[0].Data)
	if err != nil {
		t.Fatalf("%s: commit: %v", r.path, err)
	}
	var desc struct {
		DIDDoc struct {
			VerificationMethod []struct{ PublicKeyMultibase string }
		}
	}
	mustJSON(t, get(t, w.pds.URL, read{path: "/xrpc/com.atproto.repo.describeRepo?" + q("repo", a.did)}).body, &desc)
	pub, err := atcrypto.ParsePublicMultibase(desc.DIDDoc.VerificationMethod[0].PublicKeyMultibase)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := commit["sig"].(atdata.Bytes)
	delete(commit, "sig")
	unsigned, err := atdata.MarshalCBOR(commit)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.HashAndVerify(unsigned, sig); err != nil || commit["did"] != a.did || commit["rev"] != head.Rev {
		t.Errorf("%s: the commit does not verify as %s's at rev %s: %v (%v)", r.path, a.did, head.Rev, err, commit)
	}
	data := commit["data"].(atdata.CIDLink).CID()
	if strings.Contains(r.path, "since=") {
		return // a diff: not a whole tree
	}
	tree, err := mst.Load(context.Background(), src, data)
	if err != nil {
		t.Errorf("%s: tree: %v", r.path, err)
		return
	}
	if m == "com.atproto.sync.getRepo" {
		got := map[string]string{}
		if err := tree.Walk(context.Background(), "", func(k string, v cid.Cid) error {
			if _, ok := src[v]; !ok {
				return fmt.Errorf("record %s (%s) is not in the CAR", k, v)
			}
			got[k] = v.String()
			return nil
		}); err != nil {
			t.Errorf("%s: %v", r.path, err)
		}
		if !mapsEqual(got, a.records) {
			t.Errorf("%s: the CAR's tree holds %d records, the account %d", r.path, len(got), len(a.records))
		}
		return
	}
	// sync.getRecord: the proof says whether the record is there.
	var coll, rkey string
	for _, kv := range strings.Split(strings.SplitN(r.path, "?", 2)[1], "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "collection":
			coll = v
		case "rkey":
			rkey = v
		}
	}
	v, ok, err := tree.Get(context.Background(), coll+"/"+rkey)
	want, present := a.records[coll+"/"+rkey]
	if err != nil || ok != present || (ok && v.String() != want) {
		t.Errorf("%s: the proof gives %v %v (%v), want %v %v", r.path, v, ok, err, want, present)
	}
	if ok {
		if _, in := src[v]; !in {
			t.Errorf("%s: the record block is not in the CAR", r.path)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
