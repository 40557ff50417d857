package identity

import (
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/ratelimit"
)

// Handlers serves com.atproto.identity.*.
type Handlers struct {
	PDS *pds.PDS
	// HandleLimiter, if set, limits updateHandle per account (the
	// reference's 10 / 5 min and 50 / day).
	HandleLimiter *ratelimit.Limiter
	// Privileged reports whether the caller may see did's account whatever
	// its status (its owner or the admin), refusing basic credentials that
	// are not the admin's: sync.Handlers.Privileged, required.
	Privileged func(c echo.Context, did syntax.DID) (bool, error)
	// Foreign resolves handles hosted elsewhere (resolve_foreign.go); nil:
	// resolveHandle answers for this server's accounts only.
	Foreign *ForeignHandles
}
