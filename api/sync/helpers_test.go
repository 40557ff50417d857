package sync_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/mst/car"
)

const carType = "application/vnd.ipld.car"

// write is one applyWrites operation.
type write struct {
	action, coll, rkey string
	value              map[string]any
}

func createW(coll, rkey string, v map[string]any) write { return write{"create", coll, rkey, v} }
func updateW(coll, rkey string, v map[string]any) write { return write{"update", coll, rkey, v} }
func deleteW(coll, rkey string) write                   { return write{"delete", coll, rkey, nil} }

// rk is a record key (a TID) for i.
func rk(i int) string { return syntax.NewTID(1_700_000_000_000_000+int64(i), 0).String() }

func post(text string) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-26T12:00:00.000Z"}
}

func note(text string) map[string]any {
	return map[string]any{"$type": "com.example.note", "body": text}
}

type commitMeta struct {
	CID string `json:"cid"`
	Rev string `json:"rev"`
}

// applyWrites makes one commit through the XRPC API and returns it.
func applyWrites(t testing.TB, env *apitest.Env, a *apitest.Account, ws ...write) commitMeta {
	t.Helper()
	var in []map[string]any
	for _, w := range ws {
		m := map[string]any{"$type": "com.atproto.repo.applyWrites#" + w.action, "collection": w.coll, "rkey": w.rkey}
		if w.value != nil {
			m["value"] = w.value
		}
		in = append(in, m)
	}
	r := env.Do("POST", "/xrpc/com.atproto.repo.applyWrites", nil, a.Token, map[string]any{"repo": a.DID, "writes": in})
	if r.Status != 200 {
		t.Fatalf("applyWrites: %d %s", r.Status, r.Body)
	}
	var out struct {
		Commit commitMeta `json:"commit"`
	}
	r.JSON(t, &out)
	return out.Commit
}

// get calls a sync method.
func get(env *apitest.Env, method string, q url.Values, token string) *apitest.Response {
	env.T.Helper()
	return env.Do("GET", "/xrpc/com.atproto.sync."+method, q, token, nil)
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// carOf checks a CAR answer and reads it with our verifying reader (every
// block must hash to its CID): its roots, its blocks, and their order.
func carOf(t testing.TB, r *apitest.Response) (roots []cid.Cid, blocks map[cid.Cid][]byte, order []cid.Cid) {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != carType {
		t.Fatalf("content type %q", ct)
	}
	cr, err := car.NewReader(bytes.NewReader(r.Body), nil)
	if err != nil {
		t.Fatal(err)
	}
	blocks = map[cid.Cid][]byte{}
	for c, data := range cr.All() {
		if _, dup := blocks[c]; dup {
			t.Fatalf("block %s sent twice", c)
		}
		blocks[c] = data
		order = append(order, c)
	}
	if err := cr.Err(); err != nil {
		t.Fatal(err)
	}
	return cr.Roots(), blocks, order
}

// verifyRepo loads a getRepo CAR with indigo, checks the commit is a's,
// signed by a's key, and the whole tree and every record are there (each
// record block hashing to its CID). It returns the commit and the records.
func verifyRepo(t testing.TB, a *apitest.Account, body []byte) (*indigorepo.Commit, cid.Cid, map[string]cid.Cid) {
	t.Helper()
	ctx := context.Background()
	commit, repo, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("indigo LoadRepoFromCAR: %v", err)
	}
	if commit.DID != a.DID.String() {
		t.Fatalf("commit of %s, want %s", commit.DID, a.DID)
	}
	pub, err := a.Key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := commit.VerifySignature(pub); err != nil {
		t.Fatalf("commit signature: %v", err)
	}
	if repo.MST.IsPartial() {
		t.Fatal("tree is partial: the CAR lacks MST nodes")
	}
	if err := repo.MST.Verify(); err != nil {
		t.Fatalf("tree structure: %v", err)
	}
	root, err := repo.MST.RootCID()
	if err != nil {
		t.Fatal(err)
	}
	if *root != commit.Data {
		t.Fatalf("tree root %s, commit data %s", root, commit.Data)
	}
	recs := map[string]cid.Cid{}
	err = repo.MST.Walk(func(key []byte, val cid.Cid) error {
		blk, err := repo.RecordStore.Get(ctx, val)
		if err != nil {
			return fmt.Errorf("record %s: %w", key, err)
		}
		got, err := val.Prefix().Sum(blk.RawData())
		if err != nil || !got.Equals(val) {
			return fmt.Errorf("record %s: block does not hash to %s", key, val)
		}
		recs[string(key)] = val
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, commitCID, err := indigorepo.LoadCommitFromCAR(ctx, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return commit, *commitCID, recs
}

// listAll lists every record of the repo through com.atproto.repo
// (describeRepo's collections, listRecords pages): path -> CID.
func listAll(t testing.TB, env *apitest.Env, did syntax.DID) map[string]cid.Cid {
	t.Helper()
	r := env.Do("GET", "/xrpc/com.atproto.repo.describeRepo", q("repo", did.String()), "", nil)
	var d struct {
		Collections []string `json:"collections"`
	}
	r.JSON(t, &d)
	out := map[string]cid.Cid{}
	for _, coll := range d.Collections {
		cursor := ""
		for {
			qs := q("repo", did.String(), "collection", coll, "limit", "100")
			if cursor != "" {
				qs.Set("cursor", cursor)
			}
			r := env.Do("GET", "/xrpc/com.atproto.repo.listRecords", qs, "", nil)
			var page struct {
				Cursor  string `json:"cursor"`
				Records []struct {
					URI string `json:"uri"`
					CID string `json:"cid"`
				} `json:"records"`
			}
			r.JSON(t, &page)
			for _, rec := range page.Records {
				u, err := syntax.ParseATURI(rec.URI)
				if err != nil {
					t.Fatal(err)
				}
				c, err := cid.Decode(rec.CID)
				if err != nil {
					t.Fatal(err)
				}
				out[u.Collection().String()+"/"+u.RecordKey().String()] = c
			}
			if page.Cursor == "" {
				break
			}
			cursor = page.Cursor
		}
	}
	return out
}

func sameRecords(t testing.TB, got, want map[string]cid.Cid) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Fatalf("record %s: %v, want %v", k, g, v)
		}
	}
}

// errIs checks an XRPC error answer.
func errIs(t testing.TB, r *apitest.Response, status int, name string, msgHas ...string) {
	t.Helper()
	if r.Status != status || r.ErrorName() != name {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, name)
	}
	for _, s := range msgHas {
		if !strings.Contains(string(r.Body), s) {
			t.Fatalf("error %s does not mention %q", r.Body, s)
		}
	}
}
