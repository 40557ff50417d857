package mst

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/ipfs/go-cid"
)

// tidKeys returns n increasing TID-like post keys.
func tidKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("app.bsky.feed.post/3l%011d", i*7919)
	}
	return keys
}

func bigTree(t testing.TB, n int) (MemBlocks, cid.Cid, []string) {
	t.Helper()
	keys := tidKeys(n)
	m := make(map[string]cid.Cid, n)
	for i, k := range keys {
		m[k] = testCID(i)
	}
	_, store, res := buildTree(t, m)
	return store, res.Root, keys
}

// TestWriteReadsPathOnly checks that a write on a tree loaded lazily reads
// O(depth) blocks, and the same order of blocks on a big tree as on a small
// one: Load reads the root, Put the nodes on the key's path, Delete also
// the facing edges of the two subtrees it merges, and Commit the edges of
// the neighbour subtrees for the proof.
func TestWriteReadsPathOnly(t *testing.T) {
	ctx := context.Background()
	sizes := []int{1000, 40000}
	if testing.Short() {
		sizes = []int{1000, 10000}
	}
	var bytesPerWrite []float64
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			store, root, keys := bigTree(t, n)
			src := &countingSource{MemBlocks: store}
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			tr, err := Load(ctx, src, root)
			if err != nil {
				t.Fatal(err)
			}
			layers := tr.root.layer + 1
			maxOp, maxCommit := 0, 0
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			start, storeAlloc := ms.TotalAlloc, uint64(0)
			for i := range 200 {
				tr, err := Load(ctx, src, root)
				if err != nil {
					t.Fatal(err)
				}
				src.gets.Store(0)
				switch i % 3 {
				case 0: // create
					_, err = tr.Put(ctx, fmt.Sprintf("app.bsky.feed.like/3l%011d", rng.IntN(1<<30)), testCID(i))
				case 1: // update
					_, err = tr.Put(ctx, keys[rng.IntN(len(keys))], testCID(-i))
				case 2: // delete
					_, err = tr.Delete(ctx, keys[rng.IntN(len(keys))])
				}
				if err != nil {
					t.Fatal(err)
				}
				op := int(src.gets.Load())
				res, err := tr.Commit(ctx)
				if err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&ms)
				before := ms.TotalAlloc
				store.Put(res.NewBlocks...)
				runtime.ReadMemStats(&ms)
				storeAlloc += ms.TotalAlloc - before // the store's growth is not the tree's
				root = res.Root
				maxOp = max(maxOp, op)
				maxCommit = max(maxCommit, int(src.gets.Load())-op)
			}
			runtime.ReadMemStats(&ms)
			perWrite := float64(ms.TotalAlloc-start-storeAlloc) / 200
			bytesPerWrite = append(bytesPerWrite, perWrite)
			t.Logf("%d keys, %d layers: at most %d reads per write, %d more for its commit; %.0f bytes allocated per write and commit",
				n, layers, maxOp, maxCommit, perWrite)
			if maxOp > 3*layers {
				t.Errorf("a write read %d blocks; a path is %d nodes", maxOp, layers)
			}
			if maxCommit > 2*layers {
				t.Errorf("a commit read %d blocks; a path is %d nodes", maxCommit, layers)
			}
		})
	}
	if len(bytesPerWrite) == 2 && bytesPerWrite[1] > 2*bytesPerWrite[0] {
		t.Errorf("memory per write grows with the tree: %.0f bytes at %d keys, %.0f at %d",
			bytesPerWrite[0], sizes[0], bytesPerWrite[1], sizes[1])
	}
}

// TestLongLivedTreeReads checks that a tree kept across commits reads each
// node at most once.
func TestLongLivedTreeReads(t *testing.T) {
	ctx := context.Background()
	store, root, keys := bigTree(t, 5000)
	src := &countingSource{MemBlocks: store}
	tr, err := Load(ctx, src, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[:50] {
		if _, err := tr.Put(ctx, k, leafCID); err != nil {
			t.Fatal(err)
		}
		mustCommit(t, tr, store)
	}
	before := src.gets.Load()
	for _, k := range keys[:50] {
		if _, err := tr.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Put(ctx, k, leafCID); err != nil {
			t.Fatal(err)
		}
	}
	mustCommit(t, tr, store)
	if got := src.gets.Load() - before; got > 50 {
		t.Errorf("rewriting the same keys read %d more blocks", got)
	}
}

// TestWalkReadsAndDoesNotCache checks that a bounded walk reads only the
// path to its start and the nodes it visits, and that walks keep nothing.
func TestWalkReadsAndDoesNotCache(t *testing.T) {
	ctx := context.Background()
	store, root, keys := bigTree(t, 20000)
	src := &countingSource{MemBlocks: store}
	tr, err := Load(ctx, src, root)
	if err != nil {
		t.Fatal(err)
	}
	layers := tr.root.layer + 1
	for _, reverse := range []bool{false, true} {
		src.gets.Store(0)
		n := 0
		fn := func(string, cid.Cid) error {
			if n++; n == 10 {
				return ErrStopWalk
			}
			return nil
		}
		if reverse {
			err = tr.WalkReverse(ctx, keys[12345], fn)
		} else {
			err = tr.Walk(ctx, keys[12345], fn)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := int(src.gets.Load()); got > 3*layers+10 {
			t.Errorf("reverse %v: walking 10 keys read %d blocks (%d layers)", reverse, got, layers)
		}
	}
	count := func() int64 {
		src.gets.Store(0)
		if err := tr.Walk(ctx, "", func(string, cid.Cid) error { return nil }); err != nil {
			t.Fatal(err)
		}
		return src.gets.Load()
	}
	if a, b := count(), count(); a != b || a < 1000 {
		t.Errorf("full walks read %d then %d blocks; want the same, uncached", a, b)
	}
	if !allStubs(tr.root) {
		t.Error("walk left decoded nodes in the tree")
	}
}

// anyDirty reports whether the subtree n has a dirty node.
func anyDirty(n *node) bool {
	if n.dirty {
		return true
	}
	for _, k := range n.kids {
		if k != nil && anyDirty(k) {
			return true
		}
	}
	return false
}

// allStubs reports whether every child of the root is unloaded.
func allStubs(root *node) bool {
	for _, k := range root.kids {
		if k != nil && k.loaded {
			return false
		}
	}
	return true
}

func TestMissingBlock(t *testing.T) {
	ctx := context.Background()
	store, root, keys := bigTree(t, 2000)
	partial := MemBlocks{root: store[root]}
	if _, err := Load(ctx, MemBlocks{}, root); !errors.Is(err, ErrMissingBlock) {
		t.Errorf("Load from an empty store: %v", err)
	}
	ptr, err := Load(ctx, partial, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ptr.Get(ctx, keys[0]); !errors.Is(err, ErrMissingBlock) {
		t.Errorf("Get on a partial store: %v", err)
	}
	if _, err := ptr.Put(ctx, keys[0], leafCID); !errors.Is(err, ErrMissingBlock) {
		t.Errorf("Put on a partial store: %v", err)
	}
	// A failed Put changes nothing.
	if res, err := ptr.Commit(ctx); err != nil || res.Root != root || len(res.Ops) != 0 || len(res.NewBlocks) != 0 {
		t.Errorf("Commit after a failed Put: %+v, %v", res, err)
	}
	if err := ptr.Walk(ctx, "", func(string, cid.Cid) error { return nil }); !errors.Is(err, ErrMissingBlock) {
		t.Errorf("Walk on a partial store: %v", err)
	}
	// With half the blocks: a Put either works or changes nothing.
	half := MemBlocks{}
	i := 0
	for c, b := range store {
		if i++; i%2 == 0 || c == root {
			half[c] = b
		}
	}
	rng := rand.New(rand.NewPCG(13, 14))
	failed := 0
	for j := range 300 {
		tr, err := Load(ctx, half, root)
		if err != nil {
			t.Fatal(err)
		}
		key := keys[rng.IntN(len(keys))]
		if j%2 == 0 {
			key += "x" // a create
		}
		if _, err := tr.Put(ctx, key, leafCID); err == nil {
			continue
		} else if !errors.Is(err, ErrMissingBlock) {
			t.Fatal(err)
		}
		failed++
		if anyDirty(tr.root) || tr.root.cid != root || len(tr.changes) != 0 {
			t.Fatalf("a failed Put(%q) changed the tree", key)
		}
	}
	if failed == 0 {
		t.Error("no Put failed")
	}
}

// TestCommitRetry checks that a Commit failing on a missing proof block
// leaves the tree as it was, so that it can be retried.
func TestCommitRetry(t *testing.T) {
	ctx := context.Background()
	store, root, keys := bigTree(t, 2000)
	failed := 0
	for i := 0; i < 200 && failed < 5; i += 7 {
		src := MemBlocks{}
		for c, b := range store {
			src[c] = b
		}
		tr, err := Load(ctx, src, root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Delete(ctx, keys[i]); err != nil {
			t.Fatal(err)
		}
		clear(src) // the commit can use only what the delete loaded
		if _, err := tr.Commit(ctx); err == nil {
			continue
		} else if !errors.Is(err, ErrMissingBlock) {
			t.Fatalf("Commit: %v", err)
		}
		failed++
		for c, b := range store {
			src[c] = b
		}
		res, err := tr.Commit(ctx)
		if err != nil {
			t.Fatalf("retried Commit: %v", err)
		}
		if len(res.Ops) != 1 || res.Ops[0].Key != keys[i] || res.PrevRoot != root {
			t.Fatalf("retried Commit: ops %v, prev root %s", res.Ops, res.PrevRoot)
		}
		control, err := Load(ctx, store, root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := control.Delete(ctx, keys[i]); err != nil {
			t.Fatal(err)
		}
		want, err := control.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Root != want.Root || len(res.NewBlocks) != len(want.NewBlocks) || len(res.ProofBlocks) != len(want.ProofBlocks) {
			t.Fatalf("retried Commit: root %s, %d+%d blocks; want %s, %d+%d", res.Root,
				len(res.NewBlocks), len(res.ProofBlocks), want.Root, len(want.NewBlocks), len(want.ProofBlocks))
		}
	}
	if failed == 0 {
		t.Fatal("no commit needed a block the delete had not loaded")
	}
}

func TestBadBlocks(t *testing.T) {
	ctx := context.Background()
	store, root, keys := bigTree(t, 200)
	// A block that does not hash to its CID.
	bad := MemBlocks{root: append([]byte{}, store[root]...)}
	bad[root][len(bad[root])-1] ^= 1
	if _, err := Load(ctx, bad, root); !errors.Is(err, ErrInvalidNode) {
		t.Errorf("Load of a corrupted block: %v", err)
	}
	// A valid node in the wrong place: a child block as the root's left
	// subtree, one layer too high.
	tr, err := Load(ctx, store, root)
	if err != nil {
		t.Fatal(err)
	}
	tr.root.kids[0] = stub(root, tr.root.layer-1)
	if _, _, err := tr.Get(ctx, keys[0]); !errors.Is(err, ErrInvalidTree) {
		t.Errorf("Get through a misplaced node: %v", err)
	}
	// A root with a subtree but no key.
	ptr := (&encodedNode{links: []cid.Cid{root}}).encode()
	pc := cidForNode(ptr)
	if _, err := Load(ctx, MemBlocks{pc: ptr}, pc); !errors.Is(err, ErrInvalidTree) {
		t.Errorf("Load of a pointer-only root: %v", err)
	}
}
