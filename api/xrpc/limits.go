package xrpc

import (
	"errors"
	"net/http"
	"os"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/ratelimit"
)

const rateLimitKey = "xrpc.ratelimit"

// RateLimit records d, a rate limit charged for the request being served,
// and writes the RateLimit-* headers of the most binding limit charged for
// it so far: the reference sends them on every limited response, not only
// on a 429. Call it before the response is written.
func RateLimit(c echo.Context, d ratelimit.Decision) {
	if prev, ok := c.Get(rateLimitKey).(ratelimit.Decision); ok {
		d = ratelimit.Binding(prev, d)
	}
	c.Set(rateLimitKey, d)
	tmp := http.Header{}
	d.SetHeaders(tmp)
	h := c.Response().Header()
	for k, vs := range tmp {
		if k != "Access-Control-Expose-Headers" {
			h[k] = vs
			continue
		}
		have := strings.Join(h.Values(k), ",")
		for _, v := range vs {
			if !strings.Contains(have, v) {
				h.Add(k, v)
			}
		}
	}
}

// TooManyRequests is the reference's 429 for a charge d refused; its
// headers are written.
func TooManyRequests(c echo.Context, d ratelimit.Decision) error {
	RateLimit(c, d)
	return &Error{Status: http.StatusTooManyRequests, Name: "RateLimitExceeded", Message: "Rate Limit Exceeded"}
}

// BodyTimeout is the 408 RequestTimeout for a request body read that
// failed because the route's body deadline passed (a body trickled in too
// slowly), or nil for any other error.
func BodyTimeout(err error) *Error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return &Error{Status: http.StatusRequestTimeout, Name: "RequestTimeout", Message: "the request body did not arrive in time", Err: err}
}
