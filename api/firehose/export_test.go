package firehose

// Test hooks: the unexported options, settable from firehose_test.

// NoRing turns the shared tail off.
func NoRing(o *Options) { o.noRing = true }

// NoCork turns batched writes off.
func NoCork(o *Options) { o.noCork = true }

// RingBounds sets the shared tail's ring bounds.
func RingBounds(o *Options, size int, bytes int64) { o.ringSize, o.ringBytes = size, bytes }

// OnNew calls f with the Handler New builds.
func OnNew(o *Options, f func(*Handler)) { o.onNew = f }

// RingRange returns the seqs (lo, hi] the ring holds; ok is false when the
// shared tail is off, not started, or stopped.
func (h *Handler) RingRange() (lo, hi uint64, ok bool) {
	if h.ring == nil {
		return 0, 0, false
	}
	h.mu.Lock()
	started := h.tailing
	h.mu.Unlock()
	h.ring.mu.Lock()
	defer h.ring.mu.Unlock()
	return uint64(h.ring.lo), uint64(h.ring.hi), started && !h.ring.stopped
}
