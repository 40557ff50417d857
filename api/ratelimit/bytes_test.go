package ratelimit

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// heapAfterGC is the live heap.
func heapAfterGC() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// A flood of distinct huge keys (the 100–150 KB identifiers of issue 14)
// costs the limiters a fixed amount per key, not the keys' size: every
// limiter keys by a fixed-size hash.
func TestLimitersKeepNoKeyBytes(t *testing.T) {
	const n, keySize = 1500, 64 << 10
	big := func(i int) string { return fmt.Sprintf("%d-%s", i, strings.Repeat("x", keySize)) }
	lt := NewLoginThrottle(LoginConfig{})
	l := NewLimiter(0, LimitGlobalIP)
	before := heapAfterGC()
	for i := range n {
		id := big(i)
		lt.Allow(id, ip1, t0)
		lt.Fail(id, ip1, t0)
		l.Charge(big(i), 1, t0)
	}
	grew := heapAfterGC() - before
	runtime.KeepAlive(lt)
	runtime.KeepAlive(l)
	t.Logf("%d distinct %d KiB keys: +%d KiB", n, keySize>>10, grew>>10)
	if grew > 4<<20 {
		t.Fatalf("%d distinct %d KiB keys grew the heap by %d MiB: the limiters keep the keys", n, keySize>>10, grew>>20)
	}
	if lt.limiter.Len() != 2*n || l.Len() != n {
		t.Fatalf("tracked %d and %d keys", lt.limiter.Len(), l.Len())
	}
}

// Every limiter's memory is bounded in bytes: what it reports as its
// bound holds when it is full, and a byte budget sets how many keys it
// keeps.
func TestLimitersBoundedInBytes(t *testing.T) {
	const keys = 20_000
	before := heapAfterGC()
	l := NewLimiter(keys, LimitCreateSessionDay, LimitCreateSession5Min)
	for i := range keys + 100 {
		l.Charge(fmt.Sprint("203.0.113.", i), 1, t0.Add(time.Duration(i)*time.Microsecond))
	}
	used := heapAfterGC() - before
	runtime.KeepAlive(l)
	t.Logf("%d keys × 2 limits: %d KiB, bound %d KiB (%d B per entry)", keys, used>>10, l.MaxBytes()>>10, used/(2*keys))
	if l.Len() != 2*keys {
		t.Fatalf("%d entries, want %d", l.Len(), 2*keys)
	}
	if used > l.MaxBytes() {
		t.Fatalf("a full limiter holds %d bytes, over its bound %d", used, l.MaxBytes())
	}

	// A throttle given a byte budget fits its pairs to it, and holds no
	// more than its bound when full (streaks with attempts pending).
	before = heapAfterGC()
	lt := NewLoginThrottle(LoginConfig{MaxBytes: 4 << 20})
	for i := range 50_000 {
		id := fmt.Sprint("user", i)
		lt.Allow(id, ip1, t0)
		lt.Fail(id, ip1, t0)
		lt.Allow(id, ip1, t0)
		lt.Allow(id, ip1, t0)
	}
	used = heapAfterGC() - before
	runtime.KeepAlive(lt)
	lt.mu.Lock()
	streaks := lt.streaks.len()
	lt.mu.Unlock()
	t.Logf("throttle of 4 MiB: %d windows, %d streaks, %d KiB", lt.limiter.Len(), streaks, used>>10)
	if lt.MaxBytes() > 4<<20 || used > lt.MaxBytes() || streaks < 1000 {
		t.Fatalf("a throttle given 4 MiB: bound %d, holds %d bytes in %d streaks", lt.MaxBytes(), used, streaks)
	}
	if DefaultMaxKeys*EntryBytes > DefaultMaxBytes {
		t.Fatalf("DefaultMaxKeys %d × %d B is over DefaultMaxBytes %d", DefaultMaxKeys, EntryBytes, DefaultMaxBytes)
	}
}
