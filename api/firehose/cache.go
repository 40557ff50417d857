package firehose

import (
	"log/slog"
	"sync"

	"github.com/pdslog/pdslog/eventlog"
)

// frameCache keeps the encoded frames of recent seqs so that subscribers
// reading the same events share one encoding. It is a direct-mapped table
// of slots (seq modulo size) bounded in entries and in bytes; a frame that
// would push it over its byte budget is handed out but not kept. The first
// subscriber to miss a seq encodes it; others asking for the same seq
// meanwhile wait for that encoding instead of repeating it.
type frameCache struct {
	mu       sync.Mutex
	slots    []*cacheEntry
	bytes    int64
	maxBytes int64
	m        *metrics
	logger   *slog.Logger
}

type cacheEntry struct {
	seq   eventlog.Seq
	done  chan struct{} // closed once frame/err are set
	frame []byte
	err   error
	size  int64 // bytes counted against the budget; 0 until kept
}

func newFrameCache(entries int, maxBytes int64, m *metrics, logger *slog.Logger) *frameCache {
	return &frameCache{slots: make([]*cacheEntry, entries), maxBytes: maxBytes, m: m, logger: logger}
}

// frame returns the wire frame of ev (a public event), encoding it at most
// once while it stays cached. Frames are shared: callers must not modify
// them. An event that cannot be encoded is logged once, and its error is
// cached like a frame.
func (c *frameCache) frame(ev *eventlog.Event) ([]byte, error) {
	i := int(uint64(ev.Seq) % uint64(len(c.slots)))
	c.mu.Lock()
	if e := c.slots[i]; e != nil && e.seq == ev.Seq {
		c.mu.Unlock()
		<-e.done
		return e.frame, e.err
	}
	e := &cacheEntry{seq: ev.Seq, done: make(chan struct{})}
	if old := c.slots[i]; old != nil {
		c.bytes -= old.size
	}
	c.slots[i] = e
	c.mu.Unlock()

	e.frame, e.err = Encode(ev)
	c.m.encodes.Inc()
	if e.err != nil {
		c.m.encodeErrs.Inc()
		c.logger.Error("firehose: event cannot be encoded; skipped", "seq", ev.Seq, "did", ev.DID, "err", e.err)
	}
	close(e.done)

	c.mu.Lock()
	if c.slots[i] == e {
		if n := int64(len(e.frame)); e.err == nil && c.bytes+n <= c.maxBytes {
			e.size = n
			c.bytes += n
		} else if e.err == nil {
			c.slots[i] = nil // over budget: hand it out, do not keep it
		}
	}
	c.mu.Unlock()
	return e.frame, e.err
}
