package projections

import (
	"sync"
	"sync/atomic"
)

// DefaultGenCacheEntries bounds a GenCache whose Max is 0.
const DefaultGenCacheEntries = 100_000

// GenCache is a bounded read cache in front of a projection's store whose
// entries hold for one generation. A projection starts a new generation
// (Invalidate) once it has committed a batch that may change what the
// cache holds, and a reader stamps what it puts with the generation it
// read (Gen) before it read the store: an entry filled from bytes a
// concurrent batch replaced is then already stale, never served.
// Past Max entries the cache starts over. The zero value is ready to use.
type GenCache[K comparable, V any] struct {
	Max int // 0: DefaultGenCacheEntries

	gen atomic.Uint64
	mu  sync.RWMutex
	m   map[K]genEntry[V]
}

type genEntry[V any] struct {
	gen uint64
	v   V
}

// Gen returns the current generation: read it before reading the store
// for what Put will hold.
func (c *GenCache[K, V]) Gen() uint64 { return c.gen.Load() }

// Get returns k's value if it was put in the current generation.
func (c *GenCache[K, V]) Get(k K) (V, bool) {
	g := c.gen.Load()
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || e.gen != g {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put remembers v for k as read in generation gen (from Gen).
func (c *GenCache[K, V]) Put(k K, gen uint64, v V) {
	max := c.Max
	if max <= 0 {
		max = DefaultGenCacheEntries
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= max {
		c.m = make(map[K]genEntry[V])
	}
	c.m[k] = genEntry[V]{gen: gen, v: v}
}

// Invalidate starts a new generation: every entry put before is stale.
func (c *GenCache[K, V]) Invalidate() { c.gen.Add(1) }
