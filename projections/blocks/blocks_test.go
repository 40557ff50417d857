package blocks_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/mst"

	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/blocks"
	"github.com/pdslog/pdslog/projections/projectiontest"
)

func stream(seed uint64, n int) projectiontest.Stream { return committest.NewStream(seed, n) }

func TestConformance(t *testing.T) {
	projectiontest.Run(t, func(s *projections.Store) projections.Projection { return blocks.New(s) }, stream)
}

// The projection is the block storage commits are built on: a repo whose
// every commit loads its tree from the projection stays correct.
func TestBuildOnProjection(t *testing.T) {
	ctx := context.Background()
	l := eventlogtest.Open(t, nil)
	s := projectiontest.OpenStore(t)
	p := blocks.New(s)
	r := projectiontest.Feed(l, p)
	st := committest.NewStream(7, 1)
	repo := st.Repos[0]
	b := commit.NewBuilder(nil)
	var head *eventlog.RepoHead
	for i := range 150 {
		writes := st.RandomWrites(repo, 1+i%5)
		res, err := b.Build(ctx, commit.Repo{DID: repo.DID, Head: head, Key: repo.Key, Blocks: p.Source(repo.DID)}, writes)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		seq, err := l.Append(ctx, res.Event)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CatchUp(ctx, seq); err != nil {
			t.Fatal(err)
		}
		h, err := l.RepoHead(ctx, repo.DID)
		if err != nil {
			t.Fatal(err)
		}
		head = &h
		for j, w := range writes {
			if w.Action == eventlog.ActionDelete {
				delete(repo.Records, w.Path())
			} else {
				repo.Records[w.Path()] = res.Writes[j].CID
			}
		}
	}
	tree, err := mst.Load(ctx, p.Source(repo.DID), head.Data)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cid.Cid{}
	if err := tree.Walk(ctx, "", func(k string, v cid.Cid) error { got[k] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(repo.Records) {
		t.Fatalf("tree has %d records, model %d", len(got), len(repo.Records))
	}
	for k, v := range repo.Records {
		if !got[k].Equals(v) {
			t.Fatalf("%s: tree %s model %s", k, got[k], v)
		}
	}
	if _, err := p.Get(ctx, repo.DID, eventlogtest.CID("absent")); !errors.Is(err, mst.ErrMissingBlock) {
		t.Fatalf("missing block: %v", err)
	}
}
