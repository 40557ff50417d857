package ratelimit

import (
	"container/list"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Memory bounds. Every limiter keys its state by a fixed-size hash of the
// key it is given (an identifier+IP, an IP, a DID), never the key itself,
// so a tracked key costs the same whatever its length, and a limiter's
// memory is bounded in bytes by how many keys it tracks.
const (
	// EntryBytes bounds the memory of one tracked key in one limit: its
	// map slot, list element, entry and window (measured by
	// TestLimitersBoundedInBytes).
	EntryBytes = 256
	// DefaultMaxBytes is the memory a limit of a limiter built with
	// DefaultMaxKeys may hold.
	DefaultMaxBytes = 16 << 20
)

// DefaultMaxKeys is the number of keys a limiter built by this package's
// constructors tracks per limit before it evicts: DefaultMaxBytes' worth.
const DefaultMaxKeys = DefaultMaxBytes / EntryBytes

// MaxKeysFor is how many keys fit in maxBytes for a limiter of n limits
// (at least 1).
func MaxKeysFor(maxBytes int64, n int) int {
	return max(int(maxBytes/int64(max(n, 1)*EntryBytes)), 1)
}

// hkey is what limiters key by: the first 16 bytes of the SHA-256 of the
// caller's key (collisions would take ~2^64 work to find).
type hkey [16]byte

func hashKey(s string) hkey {
	sum := sha256.Sum256([]byte(s))
	return hkey(sum[:16])
}

// Limit is one fixed-window rate limit: at most Points points per Window.
// As in the reference (rate-limiter-flexible's memory limiter behind
// @atproto/xrpc-server), a key's window opens at the first charge and
// lasts Window; the next charge after it closes opens a new one.
type Limit struct {
	Points int
	Window time.Duration
}

// Policy is the value of the RateLimit-Policy header for l:
// "<points>;w=<window seconds>".
func (l Limit) Policy() string {
	return strconv.Itoa(l.Points) + ";w=" + strconv.FormatInt(int64(l.Window/time.Second), 10)
}

// The reference's limits (createSession.ts, rate-limits.ts,
// updateHandle.ts, uploadBlob.ts, …), for the limiters below and for later
// handlers.
var (
	// per identifier+IP, on createSession
	LimitCreateSessionDay  = Limit{Points: 300, Window: 24 * time.Hour}
	LimitCreateSession5Min = Limit{Points: 30, Window: 5 * time.Minute}
	// per account DID, on record writes (create=3, update=2, delete=1)
	LimitRepoWriteHour = Limit{Points: 5000, Window: time.Hour}
	LimitRepoWriteDay  = Limit{Points: 35000, Window: 24 * time.Hour}
	// per account DID, on updateHandle
	LimitUpdateHandle5Min = Limit{Points: 10, Window: 5 * time.Minute}
	LimitUpdateHandleDay  = Limit{Points: 50, Window: 24 * time.Hour}
	// per IP, on uploadBlob: the reference's 1000/day, plus pdslog's own
	// 30/min against bursts
	LimitUploadBlobDay    = Limit{Points: 1000, Window: 24 * time.Hour}
	LimitUploadBlobMinute = Limit{Points: 30, Window: time.Minute}
	// per IP, every request but sync.getRepo (global-ip)
	LimitGlobalIP = Limit{Points: 3000, Window: 5 * time.Minute}
	// per IP, on createAccount
	LimitCreateAccount = Limit{Points: 100, Window: 5 * time.Minute}
	// per account DID, on requestEmailConfirmation, requestEmailUpdate and
	// requestAccountDelete (the reference's)
	LimitEmailRequestDay  = Limit{Points: 15, Window: 24 * time.Hour}
	LimitEmailRequestHour = Limit{Points: 5, Window: time.Hour}
	// per IP, on requestPasswordReset (the reference's)
	LimitPasswordResetDay  = Limit{Points: 50, Window: 24 * time.Hour}
	LimitPasswordResetHour = Limit{Points: 15, Window: time.Hour}
	// per IP, on resetPassword and deleteAccount (the reference's)
	LimitTokenUse5Min = Limit{Points: 50, Window: 5 * time.Minute}
	// per recipient address, on every emailed token (pdslog's own: no
	// address can be mail-bombed through the PDS)
	LimitMailPerAddressHour = Limit{Points: 10, Window: time.Hour}
	LimitMailPerAddressDay  = Limit{Points: 30, Window: 24 * time.Hour}
)

// Decision is the outcome of a charge against one or more limits, with what
// the rate-limit headers need. With several limits it describes the binding
// one: when refused, the refusing limit that frees up last; when allowed,
// the one with the fewest points left (as CombinedRateLimiter does).
type Decision struct {
	OK bool
	// Limit is the binding limit's points per window; Window its length.
	Limit  int
	Window time.Duration
	// Remaining is the points left in the binding window after this charge
	// (before it, when refused: a charge that does not fit is not counted).
	Remaining int
	// Reset is when the binding window closes (or the lockout ends).
	Reset time.Time
	// RetryAfter is how long until the charge could succeed; 0 when OK.
	RetryAfter time.Duration
}

// SetHeaders writes the reference's rate-limit headers
// (@atproto/xrpc-server rate-limiter-http.ts): RateLimit-Limit,
// RateLimit-Remaining, RateLimit-Reset (Unix seconds, rounded down),
// RateLimit-Policy ("<points>;w=<seconds>"), and, when refused, Retry-After
// (seconds, rounded up); and it adds them to Access-Control-Expose-Headers.
// A zero Decision (no limit applied) writes nothing.
func (d Decision) SetHeaders(h http.Header) {
	if d.Limit == 0 && d.Window == 0 {
		return
	}
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Reset", strconv.FormatInt(d.Reset.Unix(), 10))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Policy", Limit{Points: d.Limit, Window: d.Window}.Policy())
	h.Add("Access-Control-Expose-Headers", "RateLimit-Limit, RateLimit-Reset, RateLimit-Remaining, RateLimit-Policy")
	if !d.OK {
		secs := (d.RetryAfter + time.Second - 1) / time.Second
		if secs < 1 {
			secs = 1
		}
		h.Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		h.Add("Access-Control-Expose-Headers", "Retry-After")
	}
}

// Limiter charges points against one or more fixed-window limits per key,
// atomically: a charge is counted against all of its limits or none. It
// holds state in memory only, bounded: per limit at most maxKeys keys, an
// expired window is dropped when a new key needs room, and when every
// tracked window is live the one that would close soonest is evicted (its
// key starts afresh: under a flood of distinct keys the limiter forgets
// the oldest rather than refusing everyone). Keys are kept as fixed-size
// hashes, so its memory is bounded in bytes too (MaxBytes). It is safe for
// concurrent use.
type Limiter struct {
	limits  []Limit
	maxKeys int
	mu      sync.Mutex
	wins    []*expiringMap[*window] // one per limit
}

type window struct {
	start time.Time
	used  int
}

// NewLimiter returns a limiter enforcing every limit of limits on each key,
// tracking at most maxKeys keys per limit (DefaultMaxKeys when ≤ 0). It
// panics if a limit has Points < 1 or Window < 1s (a programming error).
func NewLimiter(maxKeys int, limits ...Limit) *Limiter {
	if len(limits) == 0 {
		panic("auth: NewLimiter without limits")
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	l := &Limiter{limits: append([]Limit(nil), limits...), maxKeys: maxKeys}
	for _, lim := range limits {
		if lim.Points < 1 || lim.Window < time.Second {
			panic(fmt.Sprintf("auth: bad limit %+v", lim))
		}
		l.wins = append(l.wins, newExpiringMap[*window](maxKeys))
	}
	return l
}

// Limits returns the limiter's limits.
func (l *Limiter) Limits() []Limit { return append([]Limit(nil), l.limits...) }

// MaxBytes bounds the memory the limiter's state can take: maxKeys per
// limit, EntryBytes each.
func (l *Limiter) MaxBytes() int64 { return int64(l.maxKeys) * int64(len(l.limits)) * EntryBytes }

// Charge counts points against key at time now, if every limit has room for
// them, and says so. Points < 1 charge nothing and report the state (like
// the reference, which skips limiting for such a charge). A charge larger
// than a limit's Points never fits.
func (l *Limiter) Charge(key string, points int, now time.Time) Decision {
	return l.chargeKey(hashKey(key), points, now)
}

func (l *Limiter) chargeKey(k hkey, points int, now time.Time) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.charge(k, points, now)
}

// Peek reports the state of key at time now without charging.
func (l *Limiter) Peek(key string, now time.Time) Decision {
	return l.Charge(key, 0, now)
}

// Reset forgets key in every limit.
func (l *Limiter) Reset(key string) {
	k := hashKey(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.wins {
		m.del(k)
	}
}

// Len is the number of keys tracked (live or not yet swept), summed over
// the limits.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.wins {
		n += m.len()
	}
	return n
}

func (l *Limiter) charge(key hkey, points int, now time.Time) Decision {
	type state struct {
		w     *window // nil: no live window (a charge would open one)
		start time.Time
		used  int
	}
	st := make([]state, len(l.limits))
	fits := true
	for i, lim := range l.limits {
		w, ok := l.wins[i].get(key, now)
		if ok {
			st[i] = state{w: w, start: w.start, used: w.used}
		} else {
			st[i] = state{start: now}
		}
		if points > 0 && st[i].used+points > lim.Points {
			fits = false
		}
	}
	var d Decision
	for i, lim := range l.limits {
		s := st[i]
		end := s.start.Add(lim.Window)
		used := s.used
		if fits && points > 0 {
			used += points
			if s.w != nil {
				s.w.used = used
			} else {
				l.wins[i].set(key, &window{start: now, used: used}, end, now)
			}
		}
		cur := Decision{
			OK:        true,
			Limit:     lim.Points,
			Window:    lim.Window,
			Remaining: max(lim.Points-used, 0),
			Reset:     end,
		}
		if points > 0 && s.used+points > lim.Points {
			cur.OK = false
			cur.RetryAfter = end.Sub(now)
		}
		if i == 0 || better(cur, d) {
			d = cur
		}
	}
	if !fits {
		d.OK = false // the binding limit is a refusing one; keep it explicit
	}
	return d
}

// better reports whether a is more binding than b: a refusal beats an
// allowance, a later retry beats an earlier one, fewer remaining points
// beat more.
func better(a, b Decision) bool {
	switch {
	case a.OK != b.OK:
		return !a.OK
	case !a.OK:
		return a.RetryAfter > b.RetryAfter
	default:
		return a.Remaining < b.Remaining
	}
}

// expiringMap is a map whose entries carry an expiry, bounded to max
// entries. Entries are kept in a list in order of expiry provided expiries
// are set non-decreasingly (true when they are now + a fixed duration and
// the clock does not go back); the front is swept when expired and evicted
// when the map is full. Not safe for concurrent use.
type expiringMap[V any] struct {
	max   int
	items map[hkey]*list.Element
	order *list.List // of *expEntry[V], soonest expiry first
}

type expEntry[V any] struct {
	key     hkey
	expires time.Time
	val     V
}

func newExpiringMap[V any](max int) *expiringMap[V] {
	return &expiringMap[V]{max: max, items: make(map[hkey]*list.Element), order: list.New()}
}

func (m *expiringMap[V]) len() int { return len(m.items) }

// get returns the live value of key; an expired one is deleted.
func (m *expiringMap[V]) get(key hkey, now time.Time) (V, bool) {
	el, ok := m.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	e := el.Value.(*expEntry[V])
	if !now.Before(e.expires) {
		m.order.Remove(el)
		delete(m.items, key)
		var zero V
		return zero, false
	}
	return e.val, true
}

// set stores val under key until expires, moving it to the back.
func (m *expiringMap[V]) set(key hkey, val V, expires, now time.Time) {
	if el, ok := m.items[key]; ok {
		e := el.Value.(*expEntry[V])
		e.val, e.expires = val, expires
		m.order.MoveToBack(el)
		return
	}
	m.sweep(now)
	for len(m.items) >= m.max {
		front := m.order.Front()
		m.order.Remove(front)
		delete(m.items, front.Value.(*expEntry[V]).key)
	}
	m.items[key] = m.order.PushBack(&expEntry[V]{key: key, expires: expires, val: val})
}

func (m *expiringMap[V]) del(key hkey) {
	if el, ok := m.items[key]; ok {
		m.order.Remove(el)
		delete(m.items, key)
	}
}

// sweep drops expired entries from the front.
func (m *expiringMap[V]) sweep(now time.Time) {
	for el := m.order.Front(); el != nil; el = m.order.Front() {
		e := el.Value.(*expEntry[V])
		if now.Before(e.expires) {
			return
		}
		m.order.Remove(el)
		delete(m.items, e.key)
	}
}
