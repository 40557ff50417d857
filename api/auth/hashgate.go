package auth

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"
)

// ErrHashBusy is returned by HashGate.Do when a password check could not
// get a hashing slot: too many were queued, or it waited longer than the
// gate allows. The caller should answer "try again shortly" (503).
var ErrHashBusy = errors.New("auth: password hashing is busy")

// Defaults of NewHashGate.
const (
	// DefaultHashWait is how long a password check waits for a slot.
	DefaultHashWait = 5 * time.Second
	// DefaultHashQueuePerSlot bounds the checks waiting, per slot.
	DefaultHashQueuePerSlot = 32
)

// ScryptMemory is what one scrypt with the reference's parameters
// allocates (128·r·N bytes): what each slot of a HashGate can hold at once.
const ScryptMemory = 128 * ScryptR * ScryptN

// HashGate bounds concurrent password hashing server-wide. Each scrypt
// takes tens of milliseconds of a core and ScryptMemory bytes; unbounded,
// a burst of logins runs them all at once and exhausts memory. Through the
// gate at most Slots run at a time; others queue (at most
// Slots·DefaultHashQueuePerSlot of them) for at most the gate's wait, then
// give up with ErrHashBusy. A nil *HashGate runs everything at once.
type HashGate struct {
	slots    chan struct{}
	wait     time.Duration
	maxQueue int64

	waiting atomic.Int64
	running atomic.Int64
	peak    atomic.Int64
	runs    atomic.Uint64
	busy    atomic.Uint64
}

// NewHashGate returns a gate of slots concurrent hashes (0 or less: one per
// core, runtime.GOMAXPROCS) whose callers wait at most wait for one (0 or
// less: DefaultHashWait).
func NewHashGate(slots int, wait time.Duration) *HashGate {
	if slots <= 0 {
		slots = runtime.GOMAXPROCS(0)
	}
	if wait <= 0 {
		wait = DefaultHashWait
	}
	return &HashGate{slots: make(chan struct{}, slots), wait: wait, maxQueue: int64(slots * DefaultHashQueuePerSlot)}
}

// Do runs fn (password hashing) once a slot is free. It returns ErrHashBusy
// without running fn when the queue is full or no slot freed up within the
// gate's wait, and ctx's cause when ctx ends first.
func (g *HashGate) Do(ctx context.Context, fn func()) error {
	if g == nil {
		fn()
		return nil
	}
	select {
	case g.slots <- struct{}{}:
	default:
		if g.waiting.Add(1) > g.maxQueue {
			g.waiting.Add(-1)
			g.busy.Add(1)
			return ErrHashBusy
		}
		t := time.NewTimer(g.wait)
		select {
		case g.slots <- struct{}{}:
			t.Stop()
			g.waiting.Add(-1)
		case <-t.C:
			g.waiting.Add(-1)
			g.busy.Add(1)
			return ErrHashBusy
		case <-ctx.Done():
			t.Stop()
			g.waiting.Add(-1)
			return context.Cause(ctx)
		}
	}
	defer func() { <-g.slots }()
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	g.runs.Add(1)
	fn()
	return nil
}

// HashGateStats is a gate's state and history.
type HashGateStats struct {
	Slots   int    // concurrent hashes allowed
	Running int64  // hashing now
	Waiting int64  // queued now
	Peak    int64  // most ever hashing at once
	Runs    uint64 // calls of Do that ran
	Busy    uint64 // calls of Do refused with ErrHashBusy
}

// Stats returns the gate's state.
func (g *HashGate) Stats() HashGateStats {
	return HashGateStats{Slots: cap(g.slots), Running: g.running.Load(), Waiting: g.waiting.Load(),
		Peak: g.peak.Load(), Runs: g.runs.Load(), Busy: g.busy.Load()}
}
