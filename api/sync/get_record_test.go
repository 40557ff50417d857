package sync_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	indigomst "github.com/bluesky-social/indigo/atproto/repo/mst"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/mst"
)

// recordProof fetches getRecord and checks what every answer must hold:
// one root, the head commit, signed by a's key. It returns the commit and
// the CAR's blocks.
func recordProof(t *testing.T, env *apitest.Env, a *apitest.Account, coll, rkey string) (*indigorepo.Commit, map[cid.Cid][]byte) {
	t.Helper()
	r := get(env, "getRecord", q("did", a.DID.String(), "collection", coll, "rkey", rkey), "")
	roots, blocks, order := carOf(t, r)
	head, err := env.Log.RepoHead(context.Background(), a.DID)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || roots[0] != head.Commit || order[0] != head.Commit {
		t.Fatalf("roots %v, first block %v; want the head commit %s", roots, order[0], head.Commit)
	}
	var c indigorepo.Commit
	if err := c.UnmarshalCBOR(bytes.NewReader(blocks[head.Commit])); err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyStructure(); err != nil {
		t.Fatal(err)
	}
	pub, err := a.Key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifySignature(pub); err != nil {
		t.Fatalf("commit signature: %v", err)
	}
	if c.Data != head.Data {
		t.Fatalf("commit data %s, head %s", c.Data, head.Data)
	}
	return &c, blocks
}

// lookups answer the key's value in the proof's blocks, with our MST and
// with indigo's; any missing block on the path is an error.
func lookups(t *testing.T, data cid.Cid, blocks map[cid.Cid][]byte, key string) (ours, theirs *cid.Cid) {
	t.Helper()
	ctx := context.Background()
	tr, err := mst.Load(ctx, mst.MemBlocks(blocks), data)
	if err != nil {
		t.Fatal(err)
	}
	v, ok, err := tr.Get(ctx, key)
	if err != nil {
		t.Fatalf("our MST over the proof: %v", err)
	}
	if ok {
		ours = &v
	}
	bs := indigorepo.NewTinyBlockstore()
	for k, b := range blocks {
		blk, err := blockformat.NewBlockWithCid(b, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := bs.Put(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	it, err := indigomst.LoadTreeFromStore(ctx, bs, data)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err = it.Get([]byte(key))
	if err != nil {
		t.Fatalf("indigo MST over the proof: %v", err)
	}
	return ours, theirs
}

// getRecord proves a record's presence (the path from the signed commit's
// data root leads to the record's CID, whose block is included) and a
// missing record's absence, as checked by our MST and indigo's over only
// the CAR's blocks; the proof is small, not the repo.
func TestGetRecord(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	var ws []write
	for i := range 150 {
		ws = append(ws, createW("app.bsky.feed.post", rk(i*2), post(fmt.Sprintf("post %d", i))))
	}
	applyWrites(t, env, a, ws[:100]...)
	applyWrites(t, env, a, ws[100:]...)
	all := listAll(t, env, a.DID)

	for _, i := range []int{0, 37, 149} {
		key := "app.bsky.feed.post/" + rk(i*2)
		c, blocks := recordProof(t, env, a, "app.bsky.feed.post", rk(i*2))
		ours, theirs := lookups(t, c.Data, blocks, key)
		if ours == nil || theirs == nil || *ours != all[key] || *theirs != all[key] {
			t.Fatalf("%s: proof gives %v (ours) %v (indigo), want %s", key, ours, theirs, all[key])
		}
		if blocks[all[key]] == nil {
			t.Fatalf("%s: record block missing", key)
		}
		if len(blocks) >= 20 {
			t.Fatalf("%s: %d blocks: more than a proof path", key, len(blocks))
		}
	}

	// Absent keys: between two records, past the last, and in a collection
	// the repo does not have.
	for _, p := range [][2]string{{"app.bsky.feed.post", rk(75)}, {"app.bsky.feed.post", rk(9999)}, {"com.example.none", "x"}} {
		key := p[0] + "/" + p[1]
		c, blocks := recordProof(t, env, a, p[0], p[1])
		if ours, theirs := lookups(t, c.Data, blocks, key); ours != nil || theirs != nil {
			t.Fatalf("%s: proof of absence gives %v (ours) %v (indigo)", key, ours, theirs)
		}
		if len(blocks) >= 20 {
			t.Fatalf("%s: %d blocks: more than a proof path", key, len(blocks))
		}
	}

	// After a delete the same call proves absence.
	key := "app.bsky.feed.post/" + rk(74)
	applyWrites(t, env, a, deleteW("app.bsky.feed.post", rk(74)))
	c, blocks := recordProof(t, env, a, "app.bsky.feed.post", rk(74))
	if ours, theirs := lookups(t, c.Data, blocks, key); ours != nil || theirs != nil {
		t.Fatalf("deleted %s: proof gives %v %v", key, ours, theirs)
	}
	if blocks[all[key]] != nil {
		t.Fatal("deleted record's block still sent")
	}
}
