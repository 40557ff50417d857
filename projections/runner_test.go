package projections_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/repos"
)

func openStore(t *testing.T) *projections.Store {
	t.Helper()
	s, err := projections.OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Read-your-writes: after Append returns seq and CatchUp(seq) returns, the
// projection shows the write — under concurrent writers and a live Run loop.
func TestCatchUpReadYourWrites(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	s := openStore(t)
	p := repos.New(s)
	r := projections.NewRunner(l, []projections.Projection{p}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			clock := eventlogtest.NewClock()
			repo := eventlogtest.NewRepo(eventlogtest.DID(w))
			for range 30 {
				ev := repo.Commit(clock, nil, 100)
				seq, err := l.Append(context.Background(), ev)
				if err != nil {
					t.Error(err)
					return
				}
				if err := r.CatchUp(context.Background(), seq); err != nil {
					t.Error(err)
					return
				}
				got, err := p.Get(context.Background(), repo.DID)
				if err != nil {
					t.Error(err)
					return
				}
				if got.Rev < ev.Commit.Rev {
					t.Errorf("after CatchUp(%d) repo %s at rev %s, want >= %s", seq, repo.DID, got.Rev, ev.Commit.Rev)
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	if err := <-runDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	st, err := r.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Cursor != 240 || st[0].Lag() != 0 {
		t.Fatalf("status %+v", st[0])
	}
}

// Run alone follows the log: it reaches every new head without CatchUp.
func TestRunFollows(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	s := openStore(t)
	p := repos.New(s)
	r := projections.NewRunner(l, []projections.Projection{p}, nil)
	applied := make(chan eventlog.Seq, 1024)
	r.OnApply = func(_ string, cursor eventlog.Seq, _ int, _ time.Duration) { applied <- cursor }
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.Run(ctx)
	stream := eventlogtest.NewStream(5, 4)
	for round := range 5 {
		var last eventlog.Seq
		for range 20 {
			seq, err := l.Append(t.Context(), stream.Next())
			if err != nil {
				t.Fatal(err)
			}
			last = seq
		}
		deadline := time.After(10 * time.Second)
		for c := eventlog.Seq(0); c < last; {
			select {
			case c = <-applied:
			case <-deadline:
				t.Fatalf("round %d: Run did not reach seq %d", round, last)
			}
		}
	}
}

// A projection whose Apply fails keeps its cursor; CatchUp reports the
// error, and succeeds once the projection works again.
type flaky struct {
	projections.Projection
	fail bool
}

func (f *flaky) Apply(ctx context.Context, evs []*eventlog.Event) error {
	if f.fail {
		return errors.New("disk on fire")
	}
	return f.Projection.Apply(ctx, evs)
}

func TestApplyFailureKeepsCursor(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	s := openStore(t)
	f := &flaky{Projection: repos.New(s)}
	r := projections.NewRunner(l, []projections.Projection{f}, nil)
	stream := eventlogtest.NewStream(9, 3)
	for range 10 {
		if _, err := l.Append(t.Context(), stream.Next()); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.CatchUp(t.Context(), 10); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := l.Append(t.Context(), stream.Next()); err != nil {
			t.Fatal(err)
		}
	}
	f.fail = true
	if err := r.CatchUp(t.Context(), 20); err == nil {
		t.Fatal("CatchUp hid an Apply failure")
	}
	if c, _ := f.Cursor(t.Context()); c != 10 {
		t.Fatalf("cursor moved to %d on failure", c)
	}
	f.fail = false
	if err := r.CatchUp(t.Context(), 20); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.Cursor(t.Context()); c != 20 {
		t.Fatalf("cursor %d after recovery", c)
	}
}

func TestRebuildUnknown(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	r := projections.NewRunner(l, []projections.Projection{repos.New(openStore(t))}, nil)
	if err := r.Rebuild(t.Context(), "nope"); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Fatalf("err = %v", err)
	}
}

func TestCatchUpPastHead(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	r := projections.NewRunner(l, []projections.Projection{repos.New(openStore(t))}, nil)
	if err := r.CatchUp(t.Context(), 5); !errors.Is(err, eventlog.ErrFutureCursor) {
		t.Fatalf("err = %v", err)
	}
}
