package records_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"

	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/projectiontest"
	"github.com/pdslog/pdslog/projections/records"
)

func stream(seed uint64, n int) projectiontest.Stream { return committest.NewStream(seed, n) }

func TestConformance(t *testing.T) {
	projectiontest.Run(t, func(s *projections.Store) projections.Projection { return records.New(s) }, stream)
}

func TestQueries(t *testing.T) {
	ctx := context.Background()
	l := eventlogtest.Open(t, nil)
	s := projectiontest.OpenStore(t)
	p := records.New(s)
	r := projectiontest.Feed(l, p)
	st := committest.NewStream(3, 3)
	for range 300 {
		ev := st.Next()
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.CatchUp(ctx, l.Head()); err != nil {
		t.Fatal(err)
	}
	for _, repo := range st.Repos {
		byColl := map[string][]string{}
		for path := range repo.Records {
			coll, rkey, _ := strings.Cut(path, "/")
			byColl[coll] = append(byColl[coll], rkey)
		}
		colls, err := p.Collections(ctx, repo.DID)
		if err != nil {
			t.Fatal(err)
		}
		if len(colls) != len(byColl) {
			t.Fatalf("%s: collections %v, model %d", repo.DID, colls, len(byColl))
		}
		for coll, rkeys := range byColl {
			slices.Sort(rkeys)
			// paginate forwards in pages of 3, and backwards
			var fwd, back []string
			for cursor := ""; ; {
				page, err := p.List(ctx, repo.DID, syntax.NSID(coll), cursor, 3, false)
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range page {
					fwd = append(fwd, rec.RKey.String())
					if !rec.CID.Equals(repo.Records[coll+"/"+rec.RKey.String()]) {
						t.Fatalf("%s/%s: cid differs", coll, rec.RKey)
					}
					if c, _ := commit.CIDForBytes(rec.Data); !c.Equals(rec.CID) {
						t.Fatalf("%s/%s: bytes do not hash to the cid", coll, rec.RKey)
					}
				}
				if len(page) < 3 {
					break
				}
				cursor = page[len(page)-1].RKey.String()
			}
			for cursor := ""; ; {
				page, err := p.List(ctx, repo.DID, syntax.NSID(coll), cursor, 2, true)
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range page {
					back = append(back, rec.RKey.String())
				}
				if len(page) < 2 {
					break
				}
				cursor = page[len(page)-1].RKey.String()
			}
			if !slices.Equal(fwd, rkeys) {
				t.Fatalf("%s forward: %v, want %v", coll, fwd, rkeys)
			}
			slices.Reverse(back)
			if !slices.Equal(back, rkeys) {
				t.Fatalf("%s reverse: %v, want %v", coll, back, rkeys)
			}
			rec, err := p.Get(ctx, repo.DID, syntax.NSID(coll), syntax.RecordKey(rkeys[0]))
			if err != nil || !rec.CID.Equals(repo.Records[coll+"/"+rkeys[0]]) {
				t.Fatalf("get: %v", err)
			}
		}
		if _, err := p.Get(ctx, repo.DID, "app.bsky.feed.post", "nope"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
	}
}

// TestDeletedInBatch applies, in one batch, an account's commits followed
// by its deletion before the log purged them (a crash between the two): as
// one event at a time, nothing of the account is left, counts included.
func TestDeletedInBatch(t *testing.T) {
	ctx := context.Background()
	st := committest.NewStream(9, 2)
	var evs []*eventlog.Event
	for len(evs) < 60 {
		ev := st.Next()
		if ev.Kind == eventlog.KindCommit {
			ev.Seq = eventlog.Seq(len(evs) + 1)
			evs = append(evs, ev)
		}
	}
	gone := st.Repos[0].DID
	evs = append(evs, &eventlog.Event{Seq: eventlog.Seq(len(evs) + 1), Kind: eventlog.KindAccount, DID: gone,
		Account: &eventlog.Account{Status: "deleted"}})
	one, all := projectiontest.OpenStore(t), projectiontest.OpenStore(t)
	p1, pAll := records.New(one), records.New(all)
	for _, ev := range evs {
		if err := p1.Apply(ctx, []*eventlog.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pAll.Apply(ctx, evs); err != nil {
		t.Fatal(err)
	}
	want, got := projectiontest.Digest(t, one, p1), projectiontest.Digest(t, all, pAll)
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Fatalf("one batch:\n%s\none event at a time:\n%s", got, want)
	}
	if colls, err := pAll.Collections(ctx, gone); err != nil || len(colls) != 0 {
		t.Fatalf("deleted account's collections: %v %v", colls, err)
	}
}
