package identity

import (
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/ratelimit"
)

// Handlers serves com.atproto.identity.*.
type Handlers struct {
	PDS *pds.PDS
	// HandleLimiter, if set, limits updateHandle per account (the
	// reference's 10 / 5 min and 50 / day).
	HandleLimiter *ratelimit.Limiter
	// Foreign resolves handles hosted elsewhere (resolve_foreign.go); nil:
	// resolveHandle answers for this server's accounts only.
	Foreign *ForeignHandles
}
