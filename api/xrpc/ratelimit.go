package xrpc

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/ratelimit"
)

// Charge charges one point of key against l (nil: no limit) and writes the
// RateLimit-* headers (of the most binding limit charged for the request,
// RateLimit); when the limit refuses, it returns the 429
// RateLimitExceeded to answer with.
func Charge(c echo.Context, l *ratelimit.Limiter, key string, now time.Time) error {
	if l == nil {
		return nil
	}
	d := l.Charge(key, 1, now)
	if !d.OK {
		return TooManyRequests(c, d)
	}
	RateLimit(c, d)
	return nil
}
