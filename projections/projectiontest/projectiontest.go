// Package projectiontest is the conformance suite every Store-backed
// projection runs: replay from zero equals incremental apply at batch sizes
// 1, 7 and 1000 on random event streams (with account deletions and log
// purges); re-applying old seqs is a no-op; gaps are refused; Reset empties;
// and a crash can never separate a batch's effects from its cursor.
package projectiontest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/projections"
)

// Factory makes the projection under test on a store.
type Factory func(s *projections.Store) projections.Projection

// Stream is a source of valid random events over a set of repos.
type Stream interface {
	Next() *eventlog.Event
	DIDs() []syntax.DID
	// Replace forgets the repo did (its account was deleted) and puts a
	// fresh repo in its place.
	Replace(did syntax.DID)
}

// NewStream makes a stream over repos repos from a seed.
type NewStream func(seed uint64, repos int) Stream

// RandomStream is the default stream: eventlogtest's random events, whose
// commits carry placeholder blocks.
func RandomStream(seed uint64, repos int) Stream { return eventlogtest.NewStream(seed, repos) }

// Run runs the whole suite on events from stream (nil means RandomStream).
func Run(t *testing.T, newP Factory, stream NewStream) {
	if stream == nil {
		stream = RandomStream
	}
	fill := func(t testing.TB, l *eventlog.Log, seed uint64, repos, n int, after func()) {
		Fill(t, l, stream(seed, repos), seed, n, after)
	}
	t.Run("ReplayEqualsIncremental", func(t *testing.T) { testReplayEqualsIncremental(t, newP, fill) })
	t.Run("ReapplyIsNoop", func(t *testing.T) { testReapply(t, newP, fill) })
	t.Run("GapRefused", func(t *testing.T) { testGap(t, newP, fill) })
	t.Run("Reset", func(t *testing.T) { testReset(t, newP, fill) })
	t.Run("CrashAtomic", func(t *testing.T) { testCrash(t, newP, fill) })
}

type fillFunc func(t testing.TB, l *eventlog.Log, seed uint64, repos, n int, after func())

// Fill appends n events from s to l, deleting an account (a #account
// deleted event followed by a log Purge, as the server does) about every 60
// events. after, if set, runs after each append or purge.
func Fill(t testing.TB, l *eventlog.Log, s Stream, seed uint64, n int, after func()) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < n; i++ {
		if i > 0 && rng.IntN(60) == 0 {
			dids := s.DIDs()
			did := dids[rng.IntN(len(dids))]
			del := &eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Status: "deleted"}}
			seq, err := l.Append(ctx, del)
			if err != nil {
				t.Fatal(err)
			}
			if after != nil {
				after()
			}
			if _, err := l.Purge(ctx, did, seq); err != nil {
				t.Fatal(err)
			}
			if after != nil {
				after()
			}
			s.Replace(did)
			continue
		}
		if _, err := l.Append(ctx, s.Next()); err != nil {
			t.Fatal(err)
		}
		if after != nil {
			after()
		}
	}
}

func openStore(t testing.TB, fs vfs.FS) *projections.Store {
	t.Helper()
	dir := t.TempDir()
	if fs != nil {
		dir = "store"
	}
	s, err := projections.OpenStore(dir, &projections.StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Digest returns the projection's full state as bytes.
func Digest(t testing.TB, s *projections.Store, p projections.Projection) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Space(p.Name()).Dump(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func cursor(t testing.TB, p projections.Projection) eventlog.Seq {
	t.Helper()
	c, err := p.Cursor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func replay(t testing.TB, l *eventlog.Log, newP Factory, batch int) (*projections.Store, projections.Projection) {
	t.Helper()
	s := openStore(t, nil)
	p := newP(s)
	r := projections.NewRunner(l, []projections.Projection{p}, &projections.RunnerOptions{BatchSize: batch})
	if err := r.CatchUp(context.Background(), l.Head()); err != nil {
		t.Fatal(err)
	}
	if got := cursor(t, p); got != l.Head() {
		t.Fatalf("batch %d: cursor %d after catch-up, head %d", batch, got, l.Head())
	}
	return s, p
}

func testReplayEqualsIncremental(t *testing.T, newP Factory, fill fillFunc) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			l := eventlogtest.Open(t, &eventlog.Options{SealKey: make([]byte, 32)})
			incStore := openStore(t, nil)
			inc := newP(incStore)
			runner := projections.NewRunner(l, []projections.Projection{inc}, &projections.RunnerOptions{BatchSize: 1})
			fill(t, l, seed, 6, 400, func() {
				if err := runner.CatchUp(context.Background(), l.Head()); err != nil {
					t.Fatal(err)
				}
			})
			want := Digest(t, incStore, inc)
			if len(want) == 0 {
				t.Fatal("incremental projection is empty: the suite would prove nothing")
			}
			for _, batch := range []int{1, 7, 1000} {
				s, p := replay(t, l, newP, batch)
				if got := Digest(t, s, p); !bytes.Equal(got, want) {
					t.Fatalf("replay at batch %d differs from incremental apply:\nreplay:\n%s\nincremental:\n%s", batch, got, want)
				}
			}
			// Rebuild in place equals too.
			if err := runner.Rebuild(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := Digest(t, incStore, inc); !bytes.Equal(got, want) {
				t.Fatal("rebuild in place differs from incremental apply")
			}
		})
	}
}

func allEvents(t testing.TB, l *eventlog.Log) []*eventlog.Event {
	t.Helper()
	it, err := l.Iter(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var evs []*eventlog.Event
	for it.Next() {
		evs = append(evs, it.Event())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return evs
}

func testReapply(t *testing.T, newP Factory, fill fillFunc) {
	ctx := context.Background()
	l := eventlogtest.Open(t, &eventlog.Options{SealKey: make([]byte, 32)})
	fill(t, l, 11, 4, 200, nil)
	evs := allEvents(t, l)
	s := openStore(t, nil)
	p := newP(s)
	if err := p.Apply(ctx, evs[:150]); err != nil {
		t.Fatal(err)
	}
	before := Digest(t, s, p)
	if err := p.Apply(ctx, evs[100:150]); err != nil {
		t.Fatalf("re-apply old seqs: %v", err)
	}
	if got := Digest(t, s, p); !bytes.Equal(got, before) || cursor(t, p) != 150 {
		t.Fatal("re-applying old seqs changed the state")
	}
	// An overlapping batch applies only its new part.
	if err := p.Apply(ctx, evs[140:]); err != nil {
		t.Fatal(err)
	}
	if cursor(t, p) != l.Head() {
		t.Fatalf("cursor %d, want %d", cursor(t, p), l.Head())
	}
	s2, p2 := replay(t, l, newP, 1000)
	if !bytes.Equal(Digest(t, s, p), Digest(t, s2, p2)) {
		t.Fatal("overlapping apply differs from a clean replay")
	}
}

func testGap(t *testing.T, newP Factory, fill fillFunc) {
	ctx := context.Background()
	l := eventlogtest.Open(t, &eventlog.Options{SealKey: make([]byte, 32)})
	fill(t, l, 5, 3, 50, nil)
	evs := allEvents(t, l)
	s := openStore(t, nil)
	p := newP(s)
	if err := p.Apply(ctx, evs[:10]); err != nil {
		t.Fatal(err)
	}
	before := Digest(t, s, p)
	if err := p.Apply(ctx, evs[11:20]); !errors.Is(err, projections.ErrGap) {
		t.Fatalf("apply with a gap: err = %v, want ErrGap", err)
	}
	if !bytes.Equal(Digest(t, s, p), before) || cursor(t, p) != 10 {
		t.Fatal("a refused batch left effects behind")
	}
}

func testReset(t *testing.T, newP Factory, fill fillFunc) {
	ctx := context.Background()
	l := eventlogtest.Open(t, &eventlog.Options{SealKey: make([]byte, 32)})
	fill(t, l, 9, 3, 80, nil)
	s, p := replay(t, l, newP, 7)
	if err := p.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if cursor(t, p) != 0 || len(Digest(t, s, p)) != 0 {
		t.Fatal("state left after Reset")
	}
}

// testCrash applies batches on a crashable in-memory filesystem and, after
// each, clones the filesystem as a crash would leave it (a random part of the
// unsynced writes kept): the clone's state must be exactly the state after
// the batch its cursor names.
func testCrash(t *testing.T, newP Factory, fill fillFunc) {
	ctx := context.Background()
	l := eventlogtest.Open(t, &eventlog.Options{SealKey: make([]byte, 32)})
	fill(t, l, 21, 5, 300, nil)
	evs := allEvents(t, l)
	fs := vfs.NewCrashableMem()
	s := openStore(t, fs)
	p := newP(s)
	want := map[eventlog.Seq][]byte{0: nil}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < len(evs); {
		n := 1 + rng.IntN(25)
		end := min(i+n, len(evs))
		if err := p.Apply(ctx, evs[i:end]); err != nil {
			t.Fatal(err)
		}
		want[evs[end-1].Seq] = Digest(t, s, p)
		i = end
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		cs, err := projections.OpenStore("store", &projections.StoreOptions{FS: clone})
		if err != nil {
			t.Fatalf("reopen after crash: %v", err)
		}
		cp := newP(cs)
		c := cursor(t, cp)
		w, ok := want[c]
		if !ok {
			t.Fatalf("crash left cursor %d, which no batch ended at", c)
		}
		if got := Digest(t, cs, cp); !bytes.Equal(got, w) {
			t.Fatalf("crash after seq %d: state at cursor %d differs from the state that cursor was written with", evs[end-1].Seq, c)
		}
		cs.Close()
	}
}

// OpenStore opens a projection store on a temp dir, closed when the test ends.
func OpenStore(t testing.TB) *projections.Store { return openStore(t, nil) }

// Feed returns a runner feeding ps from l.
func Feed(l *eventlog.Log, ps ...projections.Projection) *projections.Runner {
	return projections.NewRunner(l, ps, &projections.RunnerOptions{Logger: slog.New(slog.DiscardHandler)})
}
