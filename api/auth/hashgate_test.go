package auth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// The gate runs at most its slots at once, queues the rest, refuses with
// ErrHashBusy those that wait too long or find the queue full, and lets a
// caller whose context ends go.
func TestHashGate(t *testing.T) {
	g := NewHashGate(2, time.Minute)
	release := make(chan struct{})
	var running, peak atomic.Int64
	work := func() {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		running.Add(-1)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() { errs <- g.Do(context.Background(), work) })
	}
	for g.Stats().Waiting != 8 {
		time.Sleep(time.Millisecond)
	}
	if st := g.Stats(); st.Running != 2 || st.Slots != 2 {
		t.Fatalf("stats %+v, want 2 running and 8 waiting", st)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if peak.Load() != 2 || g.Stats().Peak != 2 || g.Stats().Runs != 10 {
		t.Fatalf("peak %d, stats %+v: want 2 at once, 10 runs", peak.Load(), g.Stats())
	}

	// A full slot and a short wait: refused once the wait is over, without
	// running.
	g = NewHashGate(1, 20*time.Millisecond)
	hold := make(chan struct{})
	started := make(chan struct{})
	go func() { _ = g.Do(context.Background(), func() { close(started); <-hold }) }()
	<-started
	ran := false
	if err := g.Do(context.Background(), func() { ran = true }); !errors.Is(err, ErrHashBusy) || ran {
		t.Fatalf("waiting past the gate's wait: %v (ran %v), want ErrHashBusy", err, ran)
	}
	// A caller whose context ends stops waiting with its cause.
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("client gone")
	go func() { time.Sleep(5 * time.Millisecond); cancel(cause) }()
	g2 := NewHashGate(1, time.Minute)
	started2 := make(chan struct{})
	go func() { _ = g2.Do(context.Background(), func() { close(started2); <-hold }) }()
	<-started2
	if err := g2.Do(ctx, func() { ran = true }); !errors.Is(err, cause) || ran {
		t.Fatalf("cancelled while waiting: %v (ran %v)", err, ran)
	}
	// A full queue refuses at once.
	for range DefaultHashQueuePerSlot {
		go func() { _ = g2.Do(context.Background(), func() {}) }()
	}
	for g2.Stats().Waiting != DefaultHashQueuePerSlot {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := g2.Do(context.Background(), func() { ran = true }); !errors.Is(err, ErrHashBusy) || ran || time.Since(start) > 10*time.Second {
		t.Fatalf("full queue: %v after %v (ran %v)", err, time.Since(start), ran)
	}
	close(hold)
	if st := g2.Stats(); st.Busy != 1 {
		t.Fatalf("stats %+v, want 1 refused", st)
	}
}

// MatchAppPassword finds the stored hash a password is among many, with
// the hashes HashAppPassword makes; wrong, empty, over-long passwords and
// malformed hashes match nothing.
func TestMatchAppPassword(t *testing.T) {
	did := syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	pws := []string{NewAppPassword(), NewAppPassword(), NewAppPassword()}
	hashes := []string{"not-a-hash"}
	for _, pw := range pws {
		h, err := HashAppPassword(did, pw)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	for i, pw := range pws {
		if got, err := MatchAppPassword(did, pw, hashes); err != nil || got != i+1 {
			t.Errorf("password %d: index %d, %v", i, got, err)
		}
	}
	for _, pw := range []string{NewAppPassword(), "", string(make([]byte, OldPasswordMaxLength+1))} {
		if got, err := MatchAppPassword(did, pw, hashes); err != nil || got != -1 {
			t.Errorf("%q matched %d (%v)", pw[:min(len(pw), 8)], got, err)
		}
	}
	// Another account's hash of the same password does not match.
	other, _ := HashAppPassword("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", pws[0])
	if got, _ := MatchAppPassword(did, pws[0], []string{other}); got != -1 {
		t.Errorf("another DID's hash matched")
	}
}
