package ratelimit

import (
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Repo write costs (rate-limits.ts: "creates=3, puts=2, deletes=1"; the
// same per operation of applyWrites).
const (
	WritePointsCreate = 3
	WritePointsUpdate = 2
	WritePointsDelete = 1
)

// WritePoints is the cost of a batch of writes.
func WritePoints(creates, updates, deletes int) int {
	return creates*WritePointsCreate + updates*WritePointsUpdate + deletes*WritePointsDelete
}

// WriteLimiter is the per-account repo-write budget: 5000 points per hour
// and 35000 per day (repo-write-hour, repo-write-day), in memory, bounded.
type WriteLimiter struct{ l *Limiter }

// NewWriteLimiter returns the reference's write limits tracking at most
// maxKeys accounts (DefaultMaxKeys when ≤ 0).
func NewWriteLimiter(maxKeys int) *WriteLimiter {
	return &WriteLimiter{l: NewLimiter(maxKeys, LimitRepoWriteHour, LimitRepoWriteDay)}
}

// Charge counts points (WritePoints) against did's budget at time now if
// both windows have room. A refused write costs nothing.
func (w *WriteLimiter) Charge(did syntax.DID, points int, now time.Time) Decision {
	return w.l.Charge(string(did), points, now)
}

// NewUpdateHandleLimiter returns updateHandle's limits, keyed by account
// DID: 10 per 5 minutes and 50 per day (updateHandle.ts). Charge 1 per call.
func NewUpdateHandleLimiter(maxKeys int) *Limiter {
	return NewLimiter(maxKeys, LimitUpdateHandle5Min, LimitUpdateHandleDay)
}

// NewUploadBlobLimiter returns uploadBlob's limits, keyed by client IP:
// the reference's 1000 per day (uploadBlob.ts) and 30 per minute. Charge 1
// per call.
func NewUploadBlobLimiter(maxKeys int) *Limiter {
	return NewLimiter(maxKeys, LimitUploadBlobDay, LimitUploadBlobMinute)
}
