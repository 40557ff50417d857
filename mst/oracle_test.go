package mst

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	indigomst "github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ipfs/go-cid"
)

// These tests run the same random operations on our tree and on indigo's
// atproto/repo/mst (the oracle) and require the same roots and the same
// node bytes, across commits and lazy reloads from the block store.

// checkIndigoInversion loads indigo's partial tree from only res's blocks,
// inverts res.Ops in the order indigo's VerifyCommitMessage uses
// (repo.NormalizeOps: deletes first, then by key), and requires
// res.PrevRoot.
//
// Only that order: indigo's Remove leaves an emptied root at its old
// height, so inverting a create of the only key on the top layer before
// re-inserting a deleted lower key yields a pointer-only root and a wrong
// CID. Our Invert is checked in every order.
func checkIndigoInversion(t testing.TB, res *CommitResult) {
	t.Helper()
	if !res.PrevRoot.Defined() {
		return // a first commit has nothing to invert to
	}
	ctx := context.Background()
	ops := slices.Clone(res.Ops)
	sort.SliceStable(ops, func(i, j int) bool {
		di, dj := !ops[i].Val.Defined(), !ops[j].Val.Defined()
		if di != dj {
			return di
		}
		return ops[i].Key < ops[j].Key
	})
	bs := indigoBlockstore()
	putIndigo(t, bs, res.NewBlocks)
	putIndigo(t, bs, res.ProofBlocks)
	tr, err := indigomst.LoadTreeFromStore(ctx, bs, res.Root)
	if err != nil {
		t.Fatalf("indigo load partial tree: %v", err)
	}
	for _, op := range ops {
		var prev *cid.Cid
		if op.Prev.Defined() {
			prev, err = tr.Insert([]byte(op.Key), op.Prev)
		} else {
			prev, err = tr.Remove([]byte(op.Key))
		}
		if err != nil {
			t.Fatalf("indigo invert %q (order %v): %v", op.Key, opKeys(ops), err)
		}
		if (prev == nil) != !op.Val.Defined() || (prev != nil && *prev != op.Val) {
			t.Fatalf("indigo invert %q: tree had %v, op says %s", op.Key, prev, op.Val)
		}
	}
	root, err := tr.RootCID()
	if err != nil {
		t.Fatalf("indigo root after inversion: %v", err)
	}
	if *root != res.PrevRoot {
		t.Fatalf("indigo inverted %v to %s, want %s", opKeys(ops), root, res.PrevRoot)
	}
}

// keyPool returns n distinct valid keys: the interop example keys (heights
// 0-5 in known places) and then TID-like keys in a few collections.
func keyPool(t testing.TB, n int) []string {
	t.Helper()
	keys := readLines(t, "testdata/example_keys.txt")
	colls := []string{"app.bsky.feed.like", "app.bsky.feed.post", "app.bsky.graph.follow"}
	for i := 0; len(keys) < n; i++ {
		keys = append(keys, fmt.Sprintf("%s/3l%011d", colls[i%len(colls)], i*7919))
	}
	return keys[:n]
}

// opsRunner applies operations to our tree, indigo's tree and a map model.
type opsRunner struct {
	t         testing.TB
	ctx       context.Context
	keys      []string
	store     MemBlocks
	ours      *Tree
	indigo    *indigomst.Tree
	model     map[string]cid.Cid
	committed map[string]cid.Cid // model at the last commit
	commits   int
	// fullEvery is how often (in commits) to compare every node with
	// indigo's and walk the whole tree; the root is compared every commit
	// (equal roots mean equal trees, the root being a hash of them all).
	fullEvery int
}

func newOpsRunner(t testing.TB, keys []string) *opsRunner {
	store := MemBlocks{}
	ind := indigomst.NewEmptyTree()
	return &opsRunner{
		t: t, ctx: context.Background(), keys: keys, store: store,
		ours: NewEmpty(store), indigo: &ind,
		model: map[string]cid.Cid{}, committed: map[string]cid.Cid{},
		fullEvery: 1,
	}
}

func (r *opsRunner) put(key string, val cid.Cid) {
	t := r.t
	t.Helper()
	prev, err := r.ours.Put(r.ctx, key, val)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if want := r.model[key]; prev != want {
		t.Fatalf("Put(%q) prev %s, want %s", key, prev, want)
	}
	if _, err := r.indigo.Insert([]byte(key), val); err != nil {
		t.Fatalf("indigo Insert(%q): %v", key, err)
	}
	r.model[key] = val
}

func (r *opsRunner) del(key string) {
	t := r.t
	t.Helper()
	prev, err := r.ours.Delete(r.ctx, key)
	if err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
	if want := r.model[key]; prev != want {
		t.Fatalf("Delete(%q) prev %s, want %s", key, prev, want)
	}
	if _, err := r.indigo.Remove([]byte(key)); err != nil {
		t.Fatalf("indigo Remove(%q): %v", key, err)
	}
	delete(r.model, key)
	if len(r.model) == 0 {
		// indigo's Remove of the last key leaves an empty root at the old
		// height, and a later Insert of a lower key then gives a
		// pointer-only root (see TestEmptiedTree): start indigo afresh.
		ind := indigomst.NewEmptyTree()
		r.indigo = &ind
	}
}

func (r *opsRunner) get(key string) {
	t := r.t
	t.Helper()
	got, ok, err := r.ours.Get(r.ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	want, wantOK := r.model[key]
	if ok != wantOK || got != want {
		t.Fatalf("Get(%q) = %s, %v; want %s, %v", key, got, ok, want, wantOK)
	}
}

// commit commits both trees and checks everything the commit promises.
func (r *opsRunner) commit() *CommitResult {
	t := r.t
	t.Helper()
	res := mustCommit(t, r.ours, r.store)
	r.commits++
	root, err := r.indigo.WriteDiffBlocks(r.ctx, indigoBlockstore())
	if err != nil {
		t.Fatalf("indigo WriteDiffBlocks: %v", err)
	}
	if res.Root != *root {
		t.Fatalf("commit %d: root %s, indigo %s", r.commits, res.Root, root)
	}
	full := r.commits%r.fullEvery == 0
	if full {
		// Every node, byte for byte, equals indigo's tree built from
		// scratch, and the new blocks are nodes of the tree.
		wantRoot, wantBlocks := indigoAllBlocks(t, r.model)
		if wantRoot != res.Root {
			t.Fatalf("commit %d: root %s, indigo from scratch %s", r.commits, res.Root, wantRoot)
		}
		got := allBlocks(t, r.ours)
		compareBlocks(t, fmt.Sprintf("commit %d", r.commits), got, wantBlocks)
		for _, b := range res.NewBlocks {
			if _, ok := got[b.CID]; !ok {
				t.Fatalf("commit %d: new block %s is not in the tree", r.commits, b.CID)
			}
		}
	}
	for _, b := range res.ProofBlocks {
		if _, ok := r.store[b.CID]; !ok {
			t.Fatalf("commit %d: proof block %s was never stored", r.commits, b.CID)
		}
	}
	// The ops are the net difference between the two commits.
	if diff := cmp.Diff(modelOps(r.committed, r.model), res.Ops, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b cid.Cid) bool { return a == b })); diff != "" {
		t.Fatalf("commit %d: ops (-want +got):\n%s", r.commits, diff)
	}
	if len(res.Ops) > 0 {
		checkInversion(t, res)
	}
	r.committed = cloneMap(r.model)
	if full {
		r.checkWalks()
	}
	return res
}

// reload replaces our tree by one loaded lazily from the store.
func (r *opsRunner) reload() {
	t := r.t
	t.Helper()
	r.commit()
	tr, err := Load(r.ctx, r.store, r.ours.Root())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	r.ours = tr
}

// checkWalks compares walks with the model.
func (r *opsRunner) checkWalks() {
	t := r.t
	t.Helper()
	want := make([]string, 0, len(r.model))
	for k := range r.model {
		want = append(want, k)
	}
	sort.Strings(want)
	var got []string
	if err := r.ours.Walk(r.ctx, "", func(k string, v cid.Cid) error {
		if v != r.model[k] {
			t.Fatalf("Walk: %q = %s, want %s", k, v, r.model[k])
		}
		got = append(got, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want, got) {
		t.Fatalf("Walk keys (-want +got):\n%s", cmp.Diff(want, got))
	}
	if len(want) == 0 {
		return
	}
	// From a key in the middle, both ways, with and without a hit.
	mid := want[len(want)/2]
	for _, from := range []string{mid, mid + "0", mid[:len(mid)-1]} {
		i := sort.SearchStrings(want, from)
		got = got[:0]
		if err := r.ours.Walk(r.ctx, from, collect(&got)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(want[i:], got) {
			t.Fatalf("Walk from %q (-want +got):\n%s", from, cmp.Diff(want[i:], got))
		}
		got = got[:0]
		if err := r.ours.WalkReverse(r.ctx, from, collect(&got)); err != nil {
			t.Fatal(err)
		}
		rev := slices.Clone(want[:i])
		slices.Reverse(rev)
		if !slices.Equal(rev, got) {
			t.Fatalf("WalkReverse before %q (-want +got):\n%s", from, cmp.Diff(rev, got))
		}
	}
}

func collect(out *[]string) func(string, cid.Cid) error {
	return func(k string, _ cid.Cid) error {
		*out = append(*out, k)
		return nil
	}
}

func cloneMap(m map[string]cid.Cid) map[string]cid.Cid {
	out := make(map[string]cid.Cid, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// modelOps returns the net ops from a to b, sorted by key.
func modelOps(a, b map[string]cid.Cid) []Op {
	var ops []Op
	for k, v := range a {
		if w := b[k]; w != v {
			ops = append(ops, Op{Key: k, Prev: v, Val: w})
		}
	}
	for k, w := range b {
		if _, ok := a[k]; !ok {
			ops = append(ops, Op{Key: k, Val: w})
		}
	}
	slices.SortFunc(ops, func(x, y Op) int { return strings.Compare(x.Key, y.Key) })
	return ops
}

// run applies the operations encoded in data, two bytes each: the first
// picks the kind (put, delete, get, commit, reload) and the value, the
// second the key. It ends with a commit.
func (r *opsRunner) run(data []byte) {
	for len(data) >= 2 {
		op, k := data[0], r.keys[int(data[1])%len(r.keys)]
		data = data[2:]
		switch op % 16 {
		case 0, 1, 2, 3, 4, 5, 6:
			r.put(k, testCID(int(op>>4))) // 16 values: updates, some no-ops
		case 7, 8, 9, 10:
			r.del(k)
		case 11, 12:
			r.get(k)
		case 13, 14:
			r.commit()
		case 15:
			r.reload()
		}
	}
	r.commit()
}

// FuzzMSTOps applies random put/delete/get/commit/reload sequences to our
// tree and indigo's, requiring identical roots and nodes at every commit.
func FuzzMSTOps(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 13, 0, 7, 1, 15, 0})
	f.Add([]byte{0, 6, 0, 14, 0, 18, 0, 2, 15, 0, 0, 20, 7, 6, 7, 18, 13, 0})
	seed := make([]byte, 0, 400)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		seed = append(seed, byte(rng.IntN(256)), byte(rng.IntN(256)))
	}
	f.Add(seed)
	keys := keyPool(f, 256)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			return // 200 operations; longer inputs only slow the fuzzer down
		}
		newOpsRunner(t, keys).run(data)
	})
}

// TestMSTOpsRandom is FuzzMSTOps with a fixed seed and a few thousand
// operations, including on a tree of a few thousand keys.
func TestMSTOpsRandom(t *testing.T) {
	ops := 3000
	if testing.Short() {
		ops = 600
	}
	rng := rand.New(rand.NewPCG(42, 7))
	t.Run("small", func(t *testing.T) {
		keys := keyPool(t, 256)
		for run := 0; run < 4; run++ {
			data := make([]byte, 2*ops/4)
			for i := range data {
				data[i] = byte(rng.IntN(256))
			}
			newOpsRunner(t, keys).run(data)
		}
	})
	t.Run("large", func(t *testing.T) {
		keys := keyPool(t, 3000)
		r := newOpsRunner(t, keys)
		r.fullEvery = 10
		for i, k := range keys[:2000] {
			r.put(k, testCID(i))
		}
		r.reload()
		for i := 0; i < ops/2; i++ {
			k := keys[rng.IntN(len(keys))]
			switch rng.IntN(20) {
			case 0, 1, 2, 3, 4, 5, 6, 7:
				r.put(k, testCID(rng.IntN(5)))
			case 8, 9, 10, 11, 12, 13:
				r.del(k)
			case 14, 15, 16:
				r.get(k)
			case 17:
				r.commit()
			default:
				r.reload()
			}
		}
		r.commit()
	})
}
