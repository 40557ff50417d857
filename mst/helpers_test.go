package mst

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync/atomic"
	"testing"

	indigomst "github.com/bluesky-social/indigo/atproto/repo/mst"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	blockstore "github.com/ipfs/go-ipfs-blockstore"
)

// leafCID is the record CID the interop fixtures use for every key.
var leafCID = cid.MustParse("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454")

// testCID returns a distinct, deterministic value CID for i.
func testCID(i int) cid.Cid {
	return cidForNode([]byte(fmt.Sprintf("record %d", i)))
}

// countingSource is a BlockSource that counts Get calls.
type countingSource struct {
	MemBlocks
	gets atomic.Int64
}

func (s *countingSource) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	s.gets.Add(1)
	return s.MemBlocks.Get(ctx, c)
}

// readLines reads a fixture .txt file the interop way: one case per line,
// skipping only empty lines and lines starting with '#', no trimming.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// mustCommit commits tr and stores the new blocks in store.
func mustCommit(t testing.TB, tr *Tree, store MemBlocks) *CommitResult {
	t.Helper()
	res, err := tr.Commit(context.Background())
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	store.Put(res.NewBlocks...)
	return res
}

// buildTree builds a tree of m in one commit and returns it with its store.
func buildTree(t testing.TB, m map[string]cid.Cid) (*Tree, MemBlocks, *CommitResult) {
	t.Helper()
	store := MemBlocks{}
	tr := NewEmpty(store)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := tr.Put(context.Background(), k, m[k]); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	return tr, store, mustCommit(t, tr, store)
}

// allBlocks returns every node block of the committed tree.
func allBlocks(t testing.TB, tr *Tree) map[cid.Cid][]byte {
	t.Helper()
	out := map[cid.Cid][]byte{}
	err := tr.WalkNodes(context.Background(), func(b Block, _ []cid.Cid) error {
		out[b.CID] = b.Data
		return nil
	})
	if err != nil {
		t.Fatalf("WalkNodes: %v", err)
	}
	return out
}

// treeMap returns the keys and values of tr.
func treeMap(t testing.TB, tr *Tree) map[string]cid.Cid {
	t.Helper()
	out := map[string]cid.Cid{}
	err := tr.Walk(context.Background(), "", func(k string, v cid.Cid) error {
		out[k] = v
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return out
}

// indigoBlockstore returns an in-memory blockstore for indigo's MST.
func indigoBlockstore() blockstore.Blockstore {
	return blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
}

// indigoAllBlocks returns every node block of the tree holding m, as built
// from scratch by indigo.
func indigoAllBlocks(t testing.TB, m map[string]cid.Cid) (cid.Cid, map[cid.Cid][]byte) {
	t.Helper()
	ctx := context.Background()
	tr, err := indigomst.LoadTreeFromMap(m)
	if err != nil {
		t.Fatal(err)
	}
	bs := indigoBlockstore()
	root, err := tr.WriteDiffBlocks(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := bs.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[cid.Cid][]byte{}
	for c := range keys {
		b, err := bs.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		// The blockstore keys by multihash and returns CIDv1 raw; rebuild
		// the dag-cbor CID from the bytes.
		out[cidForNode(b.RawData())] = b.RawData()
	}
	return *root, out
}

// putIndigo stores our blocks in an indigo blockstore.
func putIndigo(t testing.TB, bs blockstore.Blockstore, bl []Block) {
	t.Helper()
	for _, b := range bl {
		blk, err := blocks.NewBlockWithCid(b.Data, b.CID)
		if err != nil {
			t.Fatal(err)
		}
		if err := bs.Put(context.Background(), blk); err != nil {
			t.Fatal(err)
		}
	}
}

// isMissing reports whether err is a missing-block error.
func isMissing(err error) bool {
	return errors.Is(err, ErrMissingBlock)
}
