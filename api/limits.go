package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/blob"
	"github.com/pdslog/pdslog/api/netguard"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/xrpc"
)

// What one client may make the server do, per route: the route table
// declares each route's body class and per-address limits; the middleware
// here enforces them before the handler (and before credentials are
// checked, so a refusal costs next to nothing).

// Body deadlines: how long a request body may take to arrive once its
// headers are in. A body that has not arrived by then is cut off with 408
// and the connection closed, so a client trickling a body cannot hold a
// connection and a handler for ever.
const (
	// DefaultBodyTimeout is for JSON bodies (at most 1 MB, most a few KB):
	// 60 s is 16 KB/s for the largest.
	DefaultBodyTimeout = time.Minute
	// DefaultUploadTimeout is for blob uploads: 15 minutes is ~110 KB/s
	// for the default 100 MB upload limit.
	DefaultUploadTimeout = 15 * time.Minute
)

// Declared body limits of the route classes.
const (
	// smallJSON is the reference's limit for JSON bodies (150 KiB), which
	// every procedure's handler reads with unless its route says more.
	smallJSON = 150 << 10
	// maxProxiedBody bounds the body of a procedure the proxy forwards
	// (it streams, so this bounds only how long a client may take).
	maxProxiedBody = 5 << 20
)

// bodyClass is what request body a route takes: it sets how large a
// declared Content-Length may be and how long the body may take.
type bodyClass int

const (
	// noBody: queries. A body sent anyway is not refused by its length
	// (net/http reads at most 256 KiB of it after the handler) but gets
	// BodyTimeout.
	noBody bodyClass = iota
	// jsonBody: procedures with a JSON input, up to the route's maxBody,
	// within BodyTimeout. Proxied procedures are of this class with
	// maxProxiedBody.
	jsonBody
	// blobBody: uploads, up to the blob upload limit, within
	// UploadTimeout.
	blobBody
	// carBody: importRepo's CAR, within UploadTimeout. Its size limit
	// (MaxImportSize) is the handler's to apply from the declared length:
	// it answers 400 InvalidRequest, as migration tools expect.
	carBody
)

// ipLimit is a per-address request limit a route is charged against (one
// point per request), with the reason its refusals are counted under.
type ipLimit struct {
	l      *ratelimit.Limiter
	reason string
}

// limits are the server's per-address limiters.
type limits struct {
	global        *ratelimit.Limiter // nil when rate limits are off
	createAccount *ratelimit.Limiter // nil when rate limits are off
	admin         *ratelimit.LoginThrottle
}

func newLimits(on bool) limits {
	l := limits{admin: ratelimit.NewAdminThrottle(ratelimit.DefaultMaxKeys)}
	if on {
		l.global = ratelimit.NewGlobalLimiter(ratelimit.DefaultMaxKeys)
		l.createAccount = ratelimit.NewCreateAccountLimiter(ratelimit.DefaultMaxKeys)
	}
	return l
}

// clientKey is what per-address limits count the request's client by.
func clientKey(c echo.Context) string { return netguard.Key(c.RealIP()) }

// rateLimit returns the middleware charging r's per-address limits (the
// global one unless r is exempt, and r's own), or nil if it has none. Every
// answer carries the RateLimit-* headers of the most binding of them.
func (s *Server) rateLimit(r route) echo.MiddlewareFunc {
	var ls []ipLimit
	if r.global && s.limits.global != nil {
		ls = append(ls, ipLimit{s.limits.global, RefusedRateGlobal})
	}
	if r.perIP.l != nil {
		ls = append(ls, r.perIP)
	}
	if len(ls) == 0 {
		return nil
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key, now := clientKey(c), s.now()
			for _, l := range ls {
				d := l.l.Charge(key, 1, now)
				if !d.OK {
					s.net.Refused(l.reason)
					return xrpc.TooManyRequests(c, d)
				}
				xrpc.RateLimit(c, d)
			}
			return next(c)
		}
	}
}

// limitBody returns the middleware for a route's body class: a declared
// Content-Length over the limit is answered 413 before a byte of the body
// is read, and the body gets its read deadline.
func (s *Server) limitBody(class bodyClass, maxBody int64) echo.MiddlewareFunc {
	timeout := s.cfg.BodyTimeout
	switch class {
	case blobBody:
		maxBody, timeout = s.cfg.BlobMaxSize, s.cfg.UploadTimeout
		if maxBody <= 0 {
			maxBody = blob.DefaultMaxSize
		}
	case carBody:
		timeout = s.cfg.UploadTimeout
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if (class == jsonBody || class == blobBody) && req.ContentLength > maxBody {
				s.net.Refused(RefusedBodyTooLarge)
				// Or net/http would read (up to 256 KiB of) the body
				// before answering.
				c.Response().Header().Set(echo.HeaderConnection, "close")
				return &xrpc.Error{Status: http.StatusRequestEntityTooLarge, Name: "PayloadTooLarge",
					Message: fmt.Sprintf("request body is larger than %d bytes", maxBody)}
			}
			if req.ContentLength == 0 || req.Body == nil || req.Body == http.NoBody {
				return next(c)
			}
			rc := http.NewResponseController(c.Response())
			if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
				return next(c) // not on a net/http connection
			}
			hdr := c.Response().Header()
			req.Body = &deadlineBody{ReadCloser: req.Body, onTimeout: func() {
				s.net.Refused(RefusedBodyTimeout)
				hdr.Set(echo.HeaderConnection, "close")
			}}
			return next(c)
		}
	}
}

// deadlineBody is a request body read under a deadline, which tells when
// the deadline cut it off. Once the body has been read to its end net/http
// lifts the deadline itself (it reads the connection in the background from
// then on, and a deadline passing there would cancel the request's context
// while its handler still works: TestBodyDeadlineEndsWithTheBody).
type deadlineBody struct {
	io.ReadCloser
	timedOut  bool
	onTimeout func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.timedOut && errors.Is(err, os.ErrDeadlineExceeded) {
		b.timedOut = true
		b.onTimeout()
	}
	return n, err
}

// checkAdmin checks HTTP basic admin credentials, throttled per client
// address (ratelimit.NewAdminThrottle): wrong passwords in a row lock the
// address out for a while, so the password cannot be guessed at request
// speed. A request without basic credentials (none, or a session token) is
// refused without counting.
func (s *Server) checkAdmin(c echo.Context, hdr string) error {
	if scheme, _, err := auth.ParseAuthorization(hdr); err != nil || scheme != auth.SchemeBasic || s.cfg.AdminPassword == "" {
		return xrpc.AuthRequired("admin credentials required")
	}
	key, now := clientKey(c), s.now()
	if d := s.limits.admin.Allow(ratelimit.AdminIdentifier, key, now); !d.OK {
		s.net.Refused(RefusedAdminAuth)
		return xrpc.TooManyRequests(c, d)
	}
	if !auth.CheckAdmin(hdr, s.cfg.AdminPassword) {
		s.limits.admin.Fail(ratelimit.AdminIdentifier, key, now)
		return xrpc.AuthRequired("admin credentials required")
	}
	s.limits.admin.Succeed(ratelimit.AdminIdentifier, key, now)
	return nil
}
