package commit_test

import (
	"bytes"
	"context"
	"testing"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// A full export is a CAR that indigo loads into exactly the repo, with no
// block missing or extra.
func TestExportCAR(t *testing.T) {
	ctx := context.Background()
	st := committest.NewStream(11, 1)
	r := st.Repos[0]
	for i := range 80 {
		st.Commit(r, st.RandomWrites(r, 1+i%8))
	}
	var buf bytes.Buffer
	if err := commit.ExportCAR(ctx, &buf, r.Blocks, r.Head.Commit, r.Head.Data); err != nil {
		t.Fatal(err)
	}
	roots, blocks, err := car.Unmarshal(buf.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || !roots[0].Equals(r.Head.Commit) {
		t.Fatalf("roots %v", roots)
	}
	seen := map[cid.Cid]bool{}
	for _, b := range blocks {
		if seen[b.CID] {
			t.Fatalf("block %s twice", b.CID)
		}
		seen[b.CID] = true
	}
	sc, repo, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Rev != r.Head.Rev.String() {
		t.Fatalf("rev %s", sc.Rev)
	}
	n := 0
	for path, want := range r.Records {
		coll, rkey, err := syntax.ParseRepoPath(path)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := repo.GetRecordBytes(ctx, coll, rkey)
		if err != nil || !got.Equals(want) {
			t.Fatalf("%s: %v %v", path, got, err)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("only %d records: test too small", n)
	}
	// Exactly the commit, the nodes and the records: nothing stale from
	// older commits, nothing missing.
	tree, err := mst.Load(ctx, r.Blocks, r.Head.Data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[cid.Cid]bool{r.Head.Commit: true}
	err = tree.WalkNodes(ctx, func(node mst.Block, vals []cid.Cid) error {
		want[node.CID] = true
		for _, v := range vals {
			want[v] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(want) {
		t.Fatalf("export has %d blocks, want %d", len(seen), len(want))
	}
	for c := range want {
		if !seen[c] {
			t.Fatalf("block %s missing", c)
		}
	}
}
