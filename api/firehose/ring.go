package firehose

import (
	"context"
	"errors"
	"sync"

	"github.com/pdslog/pdslog/eventlog"
)

// Default ring bounds.
const (
	// DefaultRingSize is how many of the newest seqs the shared tail keeps.
	DefaultRingSize = 4096
	// DefaultRingBytes bounds the frame bytes the shared tail keeps.
	DefaultRingBytes = 32 << 20

	// tailChunk is how many seqs the tail reads before publishing them.
	tailChunk = 256
)

// ringEntry is one seq in the ring; a nil frame means there is nothing to
// send for it (a private event, a tombstone, or one that cannot be
// encoded).
type ringEntry struct {
	seq   eventlog.Seq
	frame []byte
}

// ring holds the frames of the newest seqs, (lo, hi], as the shared tail
// read them from the log, so that live subscribers take their frames from
// memory instead of each iterating and decoding the log. It is bounded in
// seqs and bytes; a subscriber behind lo (or ahead of hi) reads the log.
//
// Purges: the ring remembers the log's purge count its contents were read
// under. Whenever it differs from the log's current count (a purge became
// durable), the ring is emptied before anything else is served from it,
// so no frame of a purged seq leaves after the purge.
type ring struct {
	purges   func() uint64
	mu       sync.Mutex
	buf      []ringEntry
	lo, hi   eventlog.Seq // holds (lo, hi]; empty when lo == hi
	bytes    int64
	maxBytes int64
	gen      uint64        // purge count the contents were read under
	notify   chan struct{} // closed and replaced when hi moves or the ring stops
	stopped  bool
	resets   func() // counts a purge reset (metrics)
}

func newRing(size int, maxBytes int64, purges func() uint64, resets func()) *ring {
	return &ring{purges: purges, buf: make([]ringEntry, size), maxBytes: maxBytes,
		notify: make(chan struct{}), resets: resets, gen: purges()}
}

// resetLocked empties the ring at position at under purge count gen.
func (r *ring) resetLocked(at eventlog.Seq, gen uint64) {
	for s := r.lo + 1; s <= r.hi; s++ {
		r.buf[int(uint64(s)%uint64(len(r.buf)))] = ringEntry{}
	}
	r.lo, r.hi, r.bytes, r.gen = at, at, 0, gen
}

// checkLocked empties the ring if a purge happened since it was filled.
func (r *ring) checkLocked() {
	if g := r.purges(); g != r.gen {
		r.resetLocked(r.hi, g)
		r.resets()
	}
}

// publish appends entries, the seqs after after read from a log iterator
// opened under purge count gen. It refuses them (and empties the ring at
// after) when a purge has happened since: the caller re-reads them.
func (r *ring) publish(gen uint64, after eventlog.Seq, entries []ringEntry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.purges(); g != gen {
		r.resetLocked(after, g)
		r.resets()
		return false
	}
	if r.gen != gen {
		r.resetLocked(after, gen)
		r.resets()
	} else if r.hi != after {
		r.resetLocked(after, gen) // not contiguous (cannot happen: the tail is the only writer)
	}
	for _, e := range entries {
		i := int(uint64(e.seq) % uint64(len(r.buf)))
		if r.hi-r.lo == eventlog.Seq(len(r.buf)) {
			r.dropLocked()
		}
		r.buf[i] = e
		r.hi = e.seq
		r.bytes += int64(len(e.frame))
		for r.bytes > r.maxBytes && r.hi-r.lo > 1 {
			r.dropLocked()
		}
	}
	if len(entries) > 0 {
		close(r.notify)
		r.notify = make(chan struct{})
	}
	return true
}

// dropLocked forgets the oldest seq.
func (r *ring) dropLocked() {
	r.lo++
	i := int(uint64(r.lo) % uint64(len(r.buf)))
	r.bytes -= int64(len(r.buf[i].frame))
	r.buf[i] = ringEntry{}
}

// take appends to batch the frames after after that the ring holds, up to
// maxFrames frames or maxBytes bytes. ok is false when the ring cannot
// serve after (behind or ahead of it, or stopped): the caller reads the
// log. Otherwise next is the new position, and tip, when not nil, is
// closed when the ring moves past next (next is the ring's newest seq).
func (r *ring) take(after eventlog.Seq, batch *[][]byte, maxFrames, maxBytes int) (next eventlog.Seq, tip <-chan struct{}, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return after, nil, false
	}
	r.checkLocked()
	if after < r.lo || after > r.hi {
		return after, nil, false
	}
	size := 0
	for after < r.hi && len(*batch) < maxFrames && size < maxBytes {
		after++
		if f := r.buf[int(uint64(after)%uint64(len(r.buf)))].frame; f != nil {
			*batch = append(*batch, f)
			size += len(f)
		}
	}
	if after == r.hi {
		return after, r.notify, true
	}
	return after, nil, true
}

// newest is the ring's newest seq.
func (r *ring) newest() eventlog.Seq {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hi
}

// stop makes every later take miss and wakes subscribers waiting on it.
func (r *ring) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.stopped = true
		r.resetLocked(r.hi, r.gen)
		close(r.notify)
	}
}

// tail is the shared reader behind the ring: it follows the log from
// after and publishes every seq's frame (encoded through the frame cache,
// so replaying subscribers share the encodings). It only reads through
// Iter, so it never publishes a seq past the durable head. It returns when
// the handler shuts down or the log fails, and stops the ring then.
func (h *Handler) tail(after eventlog.Seq) {
	defer h.ring.stop()
	ctx := h.quit
	entries := make([]ringEntry, 0, tailChunk)
	for ctx.Err() == nil {
		gen := h.ring.purges()
		next, more, err := h.tailPass(ctx, gen, after, &entries)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, eventlog.ErrClosed) {
				h.logger.Error("firehose: shared tail stopped; subscribers read the log", "seq", after, "err", err)
			}
			return
		}
		after = next
		if more {
			continue
		}
		if _, err := h.log.Wait(ctx, after); err != nil {
			if ctx.Err() == nil && !errors.Is(err, eventlog.ErrClosed) {
				h.logger.Error("firehose: shared tail stopped; subscribers read the log", "seq", after, "err", err)
			}
			return
		}
	}
}

// tailPass reads up to maxScan seqs after after, publishing them in chunks,
// and returns the position it reached and whether the log has more. A
// chunk the ring refuses (a purge happened) ends the pass at the position
// before it, to be read again.
func (h *Handler) tailPass(ctx context.Context, gen uint64, after eventlog.Seq, entries *[]ringEntry) (eventlog.Seq, bool, error) {
	it, err := h.log.Iter(ctx, after)
	if err != nil {
		return after, false, err
	}
	defer it.Close()
	scanned := 0
	flush := func() bool {
		ok := h.ring.publish(gen, after, *entries)
		if ok && len(*entries) > 0 {
			after = (*entries)[len(*entries)-1].seq
		}
		*entries = (*entries)[:0]
		return ok
	}
	for it.Next() {
		ev := it.Event()
		e := ringEntry{seq: ev.Seq}
		if ev.Kind.Public() {
			if f, err := h.cache.frame(ev); err == nil {
				e.frame = f
			}
		}
		*entries = append(*entries, e)
		scanned++
		if len(*entries) == tailChunk {
			if !flush() {
				return after, true, it.Close()
			}
		}
		if scanned >= maxScan {
			break
		}
	}
	if err := it.Close(); err != nil {
		*entries = (*entries)[:0]
		return after, false, err
	}
	if !flush() {
		return after, true, nil
	}
	return after, scanned >= maxScan, nil
}
