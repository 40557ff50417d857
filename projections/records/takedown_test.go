package records_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/projectiontest"
	"github.com/pdslog/pdslog/projections/records"
)

// TestTakedowns: random commits (creates, updates, deletes) interleaved
// with record takedowns and reversals, some of records that do not exist.
// A record taken down is left out of Served and List but kept by Get; an
// update keeps the takedown, a delete drops it (the path made again is
// served); a reversal serves it again. The state is the same applied one
// event at a time, in batches of 7 and in one batch.
func TestTakedowns(t *testing.T) {
	ctx := context.Background()
	st := committest.NewStream(11, 3)
	rng := rand.New(rand.NewPCG(11, 1))
	var evs []*eventlog.Event
	down := map[string]bool{} // did/coll/rkey taken down, per the model
	// what Served must answer right after each takedown event (by index)
	type step struct {
		did       syntax.DID
		coll      syntax.NSID
		rkey      syntax.RecordKey
		exists    bool
		takenDown bool
	}
	steps := map[int]step{}
	add := func(ev *eventlog.Event) {
		ev.Seq = eventlog.Seq(len(evs) + 1)
		evs = append(evs, ev)
	}
	for len(evs) < 600 {
		ev := st.Next()
		add(ev)
		// a deleted record's takedown goes with it
		for k := range down {
			did, path, _ := strings.Cut(k, "|")
			for _, r := range st.Repos {
				if r.DID.String() == did {
					if _, ok := r.Records[path]; !ok {
						delete(down, k)
					}
				}
			}
		}
		if rng.IntN(4) != 0 {
			continue
		}
		r := st.Repos[rng.IntN(len(st.Repos))]
		paths := make([]string, 0, len(r.Records))
		for p := range r.Records {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		path := "app.bsky.feed.post/3zzzzzzzzzzzz" // not in the repo
		if len(paths) > 0 && rng.IntN(5) != 0 {
			path = paths[rng.IntN(len(paths))]
		}
		coll, rkey, _ := strings.Cut(path, "/")
		applied := rng.IntN(3) != 0
		add(events.Must(r.DID, &events.RecordTakedown{Collection: coll, RKey: rkey, Applied: applied, Ref: "ref-" + rkey}))
		_, exists := r.Records[path]
		steps[len(evs)-1] = step{r.DID, syntax.NSID(coll), syntax.RecordKey(rkey), exists, applied && exists}
		switch {
		case !applied:
			delete(down, r.DID.String()+"|"+path)
		case exists:
			down[r.DID.String()+"|"+path] = true
		}
	}
	if len(down) == 0 {
		t.Fatal("the stream took nothing down")
	}
	one, seven, all := projectiontest.OpenStore(t), projectiontest.OpenStore(t), projectiontest.OpenStore(t)
	p1, p7, pAll := records.New(one), records.New(seven), records.New(all)
	for i, ev := range evs {
		st, isStep := steps[i]
		if isStep {
			// read first: what reads remember of the repo must not
			// outlive the takedown
			_, _ = p1.Served(ctx, st.did, st.coll, st.rkey)
			_, _ = p1.List(ctx, st.did, st.coll, "", 100, false)
		}
		if err := p1.Apply(ctx, []*eventlog.Event{ev}); err != nil {
			t.Fatal(err)
		}
		if isStep && st.exists {
			_, err := p1.Served(ctx, st.did, st.coll, st.rkey)
			if st.takenDown != errors.Is(err, records.ErrNotFound) || (err != nil && !errors.Is(err, records.ErrNotFound)) {
				t.Fatalf("event %d: served %s/%s/%s: %v, taken down %v", i, st.did, st.coll, st.rkey, err, st.takenDown)
			}
			page, err := p1.List(ctx, st.did, st.coll, "", 1000, false)
			if err != nil {
				t.Fatal(err)
			}
			listed := slices.ContainsFunc(page, func(r *records.Record) bool { return r.RKey == st.rkey })
			if listed == st.takenDown {
				t.Fatalf("event %d: listed %s/%s/%s %v, taken down %v", i, st.did, st.coll, st.rkey, listed, st.takenDown)
			}
		}
		if i%7 == 6 || i == len(evs)-1 {
			if err := p7.Apply(ctx, evs[i-i%7:i+1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pAll.Apply(ctx, evs); err != nil {
		t.Fatal(err)
	}
	want := projectiontest.Digest(t, one, p1)
	if got := projectiontest.Digest(t, seven, p7); !bytes.Equal(got, want) {
		t.Fatal("batches of 7 differ from one event at a time")
	}
	if got := projectiontest.Digest(t, all, pAll); !bytes.Equal(got, want) {
		t.Fatal("one batch differs from one event at a time")
	}
	for _, r := range st.Repos {
		byColl := map[string][]string{}
		for path := range r.Records {
			coll, rkey, _ := strings.Cut(path, "/")
			byColl[coll] = append(byColl[coll], rkey)
		}
		for coll, rkeys := range byColl {
			var served []string
			for _, rkey := range rkeys {
				isDown := down[r.DID.String()+"|"+coll+"/"+rkey]
				if !isDown {
					served = append(served, rkey)
				}
				ref, applied, err := p1.Takedown(ctx, r.DID, syntax.NSID(coll), syntax.RecordKey(rkey))
				if err != nil || applied != isDown || (applied && ref != "ref-"+rkey) {
					t.Fatalf("%s/%s/%s: takedown %v %q %v, model %v", r.DID, coll, rkey, applied, ref, err, isDown)
				}
				_, err = p1.Served(ctx, r.DID, syntax.NSID(coll), syntax.RecordKey(rkey))
				if isDown != errors.Is(err, records.ErrNotFound) || (err != nil && !errors.Is(err, records.ErrNotFound)) {
					t.Fatalf("%s/%s/%s: served %v, taken down %v", r.DID, coll, rkey, err, isDown)
				}
				if _, err := p1.Get(ctx, r.DID, syntax.NSID(coll), syntax.RecordKey(rkey)); err != nil {
					t.Fatalf("a taken-down record left the repo: %v", err)
				}
			}
			slices.Sort(served)
			var listed []string
			for cursor := ""; ; {
				page, err := p1.List(ctx, r.DID, syntax.NSID(coll), cursor, 2, false)
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range page {
					listed = append(listed, rec.RKey.String())
				}
				if len(page) < 2 {
					break
				}
				cursor = page[len(page)-1].RKey.String()
			}
			if !slices.Equal(listed, served) {
				t.Fatalf("%s %s listed %v, want %v", r.DID, coll, listed, served)
			}
		}
	}
}
