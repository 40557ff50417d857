package sync_test

import (
	"context"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/pds/commit"
)

// getBlocks answers a CAR without roots holding exactly the blocks asked
// for (each once, bytes hashing to the CID); one missing block makes it a
// BlockNotFound naming it, and blocks of another repo are missing here.
func TestGetBlocks(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	b := env.CreateAccount()
	applyWrites(t, env, a, createW("app.bsky.feed.post", rk(1), post("one")), createW("app.bsky.feed.post", rk(2), post("two")))
	applyWrites(t, env, b, createW("app.bsky.feed.post", rk(3), post("bob's")))
	ctx := context.Background()
	head, err := env.Log.RepoHead(ctx, a.DID)
	if err != nil {
		t.Fatal(err)
	}
	recs := listAll(t, env, a.DID)
	r1, r2 := recs["app.bsky.feed.post/"+rk(1)], recs["app.bsky.feed.post/"+rk(2)]

	want := []cid.Cid{head.Commit, r1, head.Data, r2}
	qs := q("did", a.DID.String())
	for _, c := range append(want, r1) { // r1 twice: sent once
		qs.Add("cids", c.String())
	}
	roots, blocks, order := carOf(t, get(env, "getBlocks", qs, ""))
	if len(roots) != 0 {
		t.Fatalf("roots %v, want none", roots)
	}
	if len(order) != len(want) {
		t.Fatalf("blocks %v, want %v", order, want)
	}
	for i, c := range want {
		if order[i] != c {
			t.Fatalf("block %d is %s, want %s", i, order[i], c)
		}
		stored, err := env.Blocks.Get(ctx, a.DID, c)
		if err != nil || string(stored) != string(blocks[c]) {
			t.Fatalf("block %s differs from the stored one (%v)", c, err)
		}
	}

	// A CID nobody stored, and bob's record asked of alice's repo.
	absent, err := commit.CIDForBytes([]byte{0xa1, 0x61, 0x78, 0x01})
	if err != nil {
		t.Fatal(err)
	}
	bobs := listAll(t, env, b.DID)["app.bsky.feed.post/"+rk(3)]
	r := get(env, "getBlocks", q("did", a.DID.String(), "cids", r1.String(), "cids", absent.String(), "cids", bobs.String()), "")
	errIs(t, r, 400, "BlockNotFound", absent.String(), bobs.String())
	if r.Header.Get("Content-Type") == carType {
		t.Fatal("error answered as a CAR")
	}
}

// getLatestCommit is the log's durable head of the repo, before and after
// a write.
func TestGetLatestCommit(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	check := func() {
		t.Helper()
		var out commitMeta
		r := get(env, "getLatestCommit", q("did", a.DID.String()), "")
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		r.JSON(t, &out)
		head, err := env.Log.RepoHead(context.Background(), a.DID)
		if err != nil {
			t.Fatal(err)
		}
		if out.CID != head.Commit.String() || out.Rev != head.Rev.String() {
			t.Fatalf("got %+v, head %s %s", out, head.Commit, head.Rev)
		}
	}
	check()
	c := applyWrites(t, env, a, createW("app.bsky.feed.post", rk(1), post("one")))
	check()
	var out commitMeta
	get(env, "getLatestCommit", q("did", a.DID.String()), "").JSON(t, &out)
	if out != c {
		t.Fatalf("latest commit %+v, the write's commit %+v", out, c)
	}
}
