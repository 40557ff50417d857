package ratelimit

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// LoginMinDuration is the least time the reference's login takes whatever
// its outcome (account-manager.ts login: "Mitigate timing attacks"), so
// that response times do not reveal whether an identifier exists. The
// createSession handler should pad to it.
const LoginMinDuration = 350 * time.Millisecond

// pendingRetry is the Retry-After of an attempt refused because enough
// others are still in flight to reach the lockout.
const pendingRetry = time.Second

// LoginConfig configures a LoginThrottle. Zero fields take the defaults
// noted.
type LoginConfig struct {
	// Limits are the attempt limits per identifier+IP
	// (default LimitCreateSessionDay, LimitCreateSession5Min).
	Limits []Limit
	// MaxFailures consecutive failed logins of an identifier from an IP lock
	// it out from that IP (default 5)...
	MaxFailures int
	// ...for Lockout (default 15 minutes).
	Lockout time.Duration
	// FailureMemory is how long a failure streak is remembered after its
	// last failure (default 1 hour; at least Lockout).
	FailureMemory time.Duration
	// PendingTimeout is how long an allowed attempt that has reported
	// neither Fail, Succeed nor Release counts as pending (default 1
	// minute).
	PendingTimeout time.Duration
	// MaxKeys bounds the identifier+IP pairs tracked, per limit and for
	// streaks (default: as many as MaxBytes allows).
	MaxKeys int
	// MaxBytes bounds the throttle's memory (default DefaultMaxBytes per
	// limit and for streaks): MaxKeys is lowered to fit.
	MaxBytes int64
}

// StreakBytes bounds the memory of one tracked failure streak (its entry
// and up to MaxFailures pending attempts, at the default of 5).
const StreakBytes = 512

// streakBytes bounds the memory of one failure streak of a throttle
// allowing maxFailures: StreakBytes, and 24 bytes per pending attempt
// beyond the default 5.
func streakBytes(maxFailures int) int64 {
	return StreakBytes + 24*int64(max(maxFailures-5, 0))
}

func (c LoginConfig) withDefaults() LoginConfig {
	if len(c.Limits) == 0 {
		c.Limits = []Limit{LimitCreateSessionDay, LimitCreateSession5Min}
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 5
	}
	if c.Lockout <= 0 {
		c.Lockout = 15 * time.Minute
	}
	if c.FailureMemory <= 0 {
		c.FailureMemory = time.Hour
	}
	if c.FailureMemory < c.Lockout {
		c.FailureMemory = c.Lockout
	}
	if c.PendingTimeout <= 0 {
		c.PendingTimeout = time.Minute
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = int64(len(c.Limits)+1) * DefaultMaxBytes
	}
	perKey := int64(len(c.Limits)*EntryBytes) + streakBytes(c.MaxFailures)
	if fit := int(max(c.MaxBytes/perKey, 1)); c.MaxKeys <= 0 || c.MaxKeys > fit {
		c.MaxKeys = fit
	}
	return c
}

// LoginThrottle limits createSession attempts per (identifier, client IP):
// the reference's 30 per 5 minutes and 300 per day, and a lockout the
// reference lacks: MaxFailures consecutive failures lock the identifier out
// from that IP for Lockout; a success resets the count.
//
// Use: call Allow before checking the password, refuse with 429
// RateLimitExceeded (and Decision.SetHeaders) when it says no, then report
// the outcome with exactly one of Fail (wrong identifier or password),
// Succeed, or Release (neither, e.g. an internal error). Attempts between
// Allow and their outcome count as pending failures, so concurrent guesses
// cannot outrun the lockout; a pending attempt never reported expires after
// PendingTimeout.
//
// The identifier is normalised (trimmed, lower-cased, as login looks it
// up) before keying, so case variants share one budget; the reference keys
// on the raw identifier.
//
// In memory and bounded like Limiter, in keys and bytes (MaxBytes): pairs
// are kept as fixed-size hashes. Safe for concurrent use.
type LoginThrottle struct {
	cfg     LoginConfig
	limiter *Limiter

	mu      sync.Mutex
	streaks *expiringMap[*streak]
}

type streak struct {
	failures    int
	pending     []time.Time // start times of unreported attempts
	lockedUntil time.Time
}

// NewLoginThrottle returns a throttle configured by cfg (see LoginConfig
// for defaults).
func NewLoginThrottle(cfg LoginConfig) *LoginThrottle {
	cfg = cfg.withDefaults()
	return &LoginThrottle{
		cfg:     cfg,
		limiter: NewLimiter(cfg.MaxKeys, cfg.Limits...),
		streaks: newExpiringMap[*streak](cfg.MaxKeys),
	}
}

// loginKey is the fixed-size key of an (identifier, IP) pair: a hash, so
// that what the throttle keeps per pair does not grow with the
// identifier.
func loginKey(identifier, ip string) hkey {
	id := strings.ToLower(strings.TrimSpace(identifier))
	// length-prefixed: no identifier can forge another pair's key
	return hashKey(strconv.Itoa(len(id)) + ":" + id + "|" + ip)
}

// MaxBytes bounds the throttle's memory: its attempt windows and failure
// streaks, whatever the identifiers' length.
func (t *LoginThrottle) MaxBytes() int64 {
	return t.limiter.MaxBytes() + int64(t.cfg.MaxKeys)*streakBytes(t.cfg.MaxFailures)
}

// livePending drops pending attempts older than PendingTimeout.
func (t *LoginThrottle) livePending(s *streak, now time.Time) {
	i := 0
	for i < len(s.pending) && !now.Before(s.pending[i].Add(t.cfg.PendingTimeout)) {
		i++
	}
	s.pending = s.pending[i:]
}

func (t *LoginThrottle) lockedDecision(until, now time.Time) Decision {
	return Decision{
		OK:         false,
		Limit:      t.cfg.MaxFailures,
		Window:     t.cfg.Lockout,
		Remaining:  0,
		Reset:      until,
		RetryAfter: until.Sub(now),
	}
}

func (t *LoginThrottle) save(key hkey, s *streak, now time.Time) {
	exp := now.Add(t.cfg.FailureMemory)
	if s.lockedUntil.After(exp) {
		exp = s.lockedUntil
	}
	t.streaks.set(key, s, exp, now)
}

// Allow decides whether a login attempt for identifier from ip may proceed
// at time now. If so, it is charged one point against the attempt limits
// and counted as pending until Fail, Succeed or Release. A refusal charges
// nothing; its Decision describes the lockout (Limit MaxFailures, Window
// Lockout, Reset its end) or the exhausted attempt limit.
func (t *LoginThrottle) Allow(identifier, ip string, now time.Time) Decision {
	key := loginKey(identifier, ip)
	t.mu.Lock()
	defer t.mu.Unlock()

	s, _ := t.streaks.get(key, now)
	if s != nil {
		if now.Before(s.lockedUntil) {
			return t.lockedDecision(s.lockedUntil, now)
		}
		t.livePending(s, now)
		if s.failures+len(s.pending) >= t.cfg.MaxFailures {
			// Enough attempts in flight to reach the lockout: wait for one
			// to report (soon, normally) or, at worst, to time out.
			until := s.pending[0].Add(t.cfg.PendingTimeout)
			if soon := now.Add(pendingRetry); soon.Before(until) {
				until = soon
			}
			return t.lockedDecision(until, now)
		}
	}
	d := t.limiter.chargeKey(key, 1, now)
	if !d.OK {
		return d
	}
	if s == nil {
		s = &streak{}
	}
	s.pending = append(s.pending, now)
	t.save(key, s, now)
	return d
}

// popPending forgets the oldest pending attempt, if any.
func (t *LoginThrottle) popPending(s *streak, now time.Time) {
	t.livePending(s, now)
	if len(s.pending) > 0 {
		s.pending = s.pending[1:]
	}
}

// Fail records a failed attempt (wrong identifier or password). The
// MaxFailures-th consecutive failure starts a lockout. The Decision says
// whether the pair is now locked out (OK false, RetryAfter the lockout)
// and otherwise how many failures remain before it is.
func (t *LoginThrottle) Fail(identifier, ip string, now time.Time) Decision {
	key := loginKey(identifier, ip)
	t.mu.Lock()
	defer t.mu.Unlock()

	s, _ := t.streaks.get(key, now)
	if s == nil {
		s = &streak{}
	}
	t.popPending(s, now)
	if now.Before(s.lockedUntil) {
		t.save(key, s, now)
		return t.lockedDecision(s.lockedUntil, now)
	}
	s.failures++
	if s.failures >= t.cfg.MaxFailures {
		s.failures = 0
		s.lockedUntil = now.Add(t.cfg.Lockout)
		t.save(key, s, now)
		return t.lockedDecision(s.lockedUntil, now)
	}
	t.save(key, s, now)
	return Decision{
		OK:        true,
		Limit:     t.cfg.MaxFailures,
		Window:    t.cfg.Lockout,
		Remaining: t.cfg.MaxFailures - s.failures,
		Reset:     now.Add(t.cfg.FailureMemory),
	}
}

// Succeed records a successful login: the failure streak (and any lockout
// state) of the pair is cleared. Attempt limits are not refunded.
func (t *LoginThrottle) Succeed(identifier, ip string, now time.Time) {
	key := loginKey(identifier, ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streaks.del(key)
}

// Release ends a pending attempt that neither failed nor succeeded
// (an internal error, say) without counting it.
func (t *LoginThrottle) Release(identifier, ip string, now time.Time) {
	key := loginKey(identifier, ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.streaks.get(key, now)
	if !ok {
		return
	}
	t.popPending(s, now)
}
