package server

import (
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/ratelimit"
)

// Handlers serves com.atproto.server.* and com.atproto.admin.*: each
// parses its input, calls the write side (api/pds) or reads its
// projections, and renders the answer. Credentials are checked before a
// handler runs, by the policy its route declares (api/routes.go).
type Handlers struct {
	PDS *pds.PDS
	// Throttle limits createSession attempts per identifier and IP.
	Throttle *ratelimit.LoginThrottle
	// EmailRequests limits the methods that mail the caller, per account;
	// PasswordResets limits requestPasswordReset and TokenUses
	// resetPassword and deleteAccount, per IP (the reference's limits; nil:
	// none).
	EmailRequests, PasswordResets, TokenUses *ratelimit.Limiter
}
