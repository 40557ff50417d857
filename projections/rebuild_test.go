package projections_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
	"github.com/pdslog/pdslog/projections/blocks"
	"github.com/pdslog/pdslog/projections/projectiontest"
	"github.com/pdslog/pdslog/projections/records"
	"github.com/pdslog/pdslog/projections/repos"
)

func allProjections(s *projections.Store) []projections.Projection {
	return []projections.Projection{repos.New(s), blocks.New(s), records.New(s), accounts.New(s), blobs.New(s)}
}

// TestRebuildAllEqualsIncremental checks the one-pass Rebuild of every
// local projection together (one read of the log, the projections applying
// each batch concurrently) against each projection applied event by event
// as the log grew, at several batch sizes, over real signed commits with
// updates, deletes and deleted accounts; and that a Rebuild cancelled
// midway leaves each projection at a cursor from which a rerun converges.
func TestRebuildAllEqualsIncremental(t *testing.T) {
	ctx := context.Background()
	l := eventlogtest.Open(t, &eventlog.Options{SealKey: make([]byte, 32)})
	incStore := projectiontest.OpenStore(t)
	inc := allProjections(incStore)
	incRunner := projections.NewRunner(l, inc, &projections.RunnerOptions{BatchSize: 1})
	projectiontest.Fill(t, l, committest.NewStream(5, 6), 5, 600, func() {
		if err := incRunner.CatchUp(ctx, l.Head()); err != nil {
			t.Fatal(err)
		}
	})
	want := make([][]byte, len(inc))
	for i, p := range inc {
		if want[i] = projectiontest.Digest(t, incStore, p); len(want[i]) == 0 && p.Name() != blobs.Name {
			t.Fatalf("%s is empty after incremental apply: the test would prove nothing", p.Name())
		}
	}
	check := func(t *testing.T, s *projections.Store, ps []projections.Projection, what string) {
		t.Helper()
		for i, p := range ps {
			if got := projectiontest.Digest(t, s, p); !bytes.Equal(got, want[i]) {
				t.Fatalf("%s: %s differs from incremental apply", what, p.Name())
			}
			if c, err := p.Cursor(ctx); err != nil || c != l.Head() {
				t.Fatalf("%s: %s cursor %d (%v), head %d", what, p.Name(), c, err, l.Head())
			}
		}
	}
	for _, batch := range []int{1, 7, 64, 1000} {
		s := projectiontest.OpenStore(t)
		ps := allProjections(s)
		r := projections.NewRunner(l, ps, &projections.RunnerOptions{BatchSize: batch})
		if err := r.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, s, ps, "rebuild")
	}

	// Rebuild in place over the incremental state, cancelled after a few
	// batches: every projection is left at some cursor with exactly the
	// effects up to it, and catching up or rebuilding again converges.
	cctx, cancel := context.WithCancel(ctx)
	r := projections.NewRunner(l, inc, &projections.RunnerOptions{BatchSize: 16})
	var batches atomic.Int32
	r.OnApply = func(string, eventlog.Seq, int, time.Duration) { // called concurrently
		if batches.Add(1) == 20 {
			cancel()
		}
	}
	if err := r.Rebuild(cctx); err == nil {
		t.Fatal("a cancelled rebuild returned no error")
	}
	for _, p := range inc {
		if c, err := p.Cursor(ctx); err != nil || c >= l.Head() {
			t.Fatalf("cancelled rebuild: %s at cursor %d (%v), head %d: it did not stop midway", p.Name(), c, err, l.Head())
		}
	}
	if err := projections.NewRunner(l, inc, nil).CatchUp(ctx, l.Head()); err != nil {
		t.Fatal(err)
	}
	check(t, incStore, inc, "catch-up after a cancelled rebuild")
	if err := projections.NewRunner(l, inc, nil).Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, incStore, inc, "rebuild after a cancelled rebuild")
}
