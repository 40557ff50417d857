package mst

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	indigomst "github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"
)

// TestProof checks getRecord proofs: from only the blocks Proof returns, a
// consumer (our tree, and indigo's partial tree) finds the key's value, or
// proves it absent.
func TestProof(t *testing.T) {
	ctx := context.Background()
	keys := keyPool(t, 2000)
	m := map[string]cid.Cid{}
	for i, k := range keys[:1500] {
		m[k] = testCID(i)
	}
	tr, store, res := buildTree(t, m)
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range 300 {
		key := keys[rng.IntN(len(keys))]
		if i%10 == 0 {
			key = keys[rng.IntN(len(keys))] + "0" // absent, right after a present key
		}
		want, wantOK := m[key]
		tr, err := Load(ctx, store, res.Root) // fresh: the proof must read what it needs
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := tr.Proof(ctx, key)
		if err != nil {
			t.Fatalf("Proof(%q): %v", key, err)
		}
		if len(blocks) == 0 || blocks[0].CID != res.Root {
			t.Fatalf("Proof(%q) does not start at the root", key)
		}
		partial := MemBlocks{}
		partial.Put(blocks...)
		ptr, err := Load(ctx, partial, res.Root)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := ptr.Get(ctx, key)
		if err != nil || ok != wantOK || got != want {
			t.Fatalf("Get(%q) from its proof = %s, %v, %v; want %s, %v", key, got, ok, err, want, wantOK)
		}

		bs := indigoBlockstore()
		putIndigo(t, bs, blocks)
		itr, err := indigomst.LoadTreeFromStore(ctx, bs, res.Root)
		if err != nil {
			t.Fatalf("indigo load of proof for %q: %v", key, err)
		}
		ic, err := itr.Get([]byte(key))
		if err != nil {
			t.Fatalf("indigo Get(%q) from its proof: %v", key, err)
		}
		if (ic != nil) != wantOK || (ic != nil && *ic != want) {
			t.Fatalf("indigo Get(%q) from its proof = %v, want %s", key, ic, want)
		}
	}

	if _, err := tr.Put(ctx, keys[1999], leafCID); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Proof(ctx, keys[0]); !errors.Is(err, ErrUncommitted) {
		t.Errorf("Proof on a dirty tree: %v", err)
	}
	if err := tr.WalkNodes(ctx, func(Block, []cid.Cid) error { return nil }); !errors.Is(err, ErrUncommitted) {
		t.Errorf("WalkNodes on a dirty tree: %v", err)
	}
}

// TestWalkNodesExport checks that the blocks WalkNodes visits are exactly
// the repository's nodes (an export), with every value once, and that a
// tree loaded from them alone can be walked completely.
func TestWalkNodesExport(t *testing.T) {
	ctx := context.Background()
	store, root, keys := bigTree(t, 3000)
	tr, err := Load(ctx, store, root)
	if err != nil {
		t.Fatal(err)
	}
	export := MemBlocks{}
	vals := map[cid.Cid]int{}
	first := true
	err = tr.WalkNodes(ctx, func(b Block, v []cid.Cid) error {
		if first && b.CID != root {
			t.Errorf("first node %s is not the root", b.CID)
		}
		first = false
		if _, dup := export[b.CID]; dup {
			t.Errorf("node %s visited twice", b.CID)
		}
		export[b.CID] = b.Data
		for _, c := range v {
			vals[c]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(export) != len(store) {
		t.Errorf("export has %d nodes, store %d", len(export), len(store))
	}
	if len(vals) != len(keys) {
		t.Errorf("export has %d values, want %d", len(vals), len(keys))
	}
	etr, err := Load(ctx, export, root)
	if err != nil {
		t.Fatal(err)
	}
	if got := treeMap(t, etr); len(got) != len(keys) {
		t.Errorf("tree from the export has %d keys, want %d", len(got), len(keys))
	}
}

func TestWalkStopAndErrors(t *testing.T) {
	ctx := context.Background()
	store, root, keys := bigTree(t, 500)
	tr, err := Load(ctx, store, root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = tr.Walk(ctx, keys[10], func(k string, _ cid.Cid) error {
		got = append(got, k)
		if len(got) == 3 {
			return ErrStopWalk
		}
		return nil
	})
	if err != nil || len(got) != 3 || got[0] != keys[10] || got[2] != keys[12] {
		t.Errorf("Walk with ErrStopWalk: %v, %v", got, err)
	}
	boom := errors.New("boom")
	if err := tr.WalkReverse(ctx, "", func(string, cid.Cid) error { return boom }); err != boom {
		t.Errorf("WalkReverse returned %v, want the callback's error", err)
	}
	got = got[:0]
	if err := tr.WalkReverse(ctx, keys[2], collect(&got)); err != nil || len(got) != 2 || got[0] != keys[1] {
		t.Errorf("WalkReverse before keys[2]: %v, %v", got, err)
	}
	// An empty tree.
	empty := NewEmpty(MemBlocks{})
	if err := empty.Walk(ctx, "", func(string, cid.Cid) error { return boom }); err != nil {
		t.Errorf("Walk of the empty tree: %v", err)
	}
}

func TestPutDeleteErrors(t *testing.T) {
	ctx := context.Background()
	tr := NewEmpty(MemBlocks{})
	if _, err := tr.Put(ctx, "no-slash", leafCID); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Put of an invalid key: %v", err)
	}
	if _, err := tr.Put(ctx, "a.b/c", cid.Undef); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("Put of an undefined value: %v", err)
	}
	if _, err := tr.Delete(ctx, "a.b/"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Delete of an invalid key: %v", err)
	}
	if _, _, err := tr.Get(ctx, "a.b//c"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Get of an invalid key: %v", err)
	}
	if prev, err := tr.Delete(ctx, "a.b/c"); err != nil || prev.Defined() {
		t.Errorf("Delete of an absent key = %s, %v", prev, err)
	}
	// The first commit of a new tree has the empty root as a new block.
	res, err := tr.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.PrevRoot.Defined() || res.Root != emptyRootCID() || len(res.NewBlocks) != 1 || len(res.Ops) != 0 {
		t.Errorf("first commit of an empty tree: %+v", res)
	}
	// No change, no blocks; a no-op write is no op.
	if _, err := tr.Put(ctx, "a.b/c", leafCID); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Put(ctx, "a.b/c", testCID(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Delete(ctx, "a.b/c"); err != nil {
		t.Fatal(err)
	}
	res, err = tr.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Root != res.PrevRoot || len(res.Ops) != 0 || len(res.ProofBlocks) != 0 {
		t.Errorf("commit of no net change: %+v", res)
	}
}

// TestEmptiedTree: a tree emptied by deletes, then given a key of a lower
// layer, has the canonical root of that one key (indigo's Tree gets this
// wrong: its emptied root keeps the old height).
func TestEmptiedTree(t *testing.T) {
	ctx := context.Background()
	_, store, res := buildTree(t, map[string]cid.Cid{"I1/525517": leafCID, "C2/014073": leafCID})
	tr, err := Load(ctx, store, res.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"C2/014073", "I1/525517"} {
		if _, err := tr.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.Put(ctx, "B0/601692", leafCID); err != nil {
		t.Fatal(err)
	}
	got := mustCommit(t, tr, store)
	_, _, want := buildTree(t, map[string]cid.Cid{"B0/601692": leafCID})
	if got.Root != want.Root {
		t.Errorf("root %s, want %s", got.Root, want.Root)
	}
	checkInversion(t, got)
}
