package xrpc

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/ratelimit"
)

// Charge charges one point of key against l (nil: no limit) and writes the
// RateLimit-* headers; when the limit refuses, it returns the 429
// RateLimitExceeded to answer with.
func Charge(c echo.Context, l *ratelimit.Limiter, key string, now time.Time) error {
	if l == nil {
		return nil
	}
	d := l.Charge(key, 1, now)
	d.SetHeaders(c.Response().Header())
	if !d.OK {
		return &Error{Status: http.StatusTooManyRequests, Name: "RateLimitExceeded", Message: "Rate Limit Exceeded"}
	}
	return nil
}
