package ratelimit

import "time"

// Admin password throttling, which the reference lacks: without it the
// admin password (HTTP basic admin:PDS_ADMIN_PASSWORD) could be guessed as
// fast as requests go. Per client address, AdminMaxFailures consecutive
// wrong passwords lock the address out of admin credentials for
// AdminLockout; attempts in flight count, so concurrent guesses cannot
// outrun it (LoginThrottle's rules, keyed by address alone).
const (
	AdminMaxFailures = 10
	AdminLockout     = 15 * time.Minute
)

// LimitAdminAttempts bounds admin attempts, right or wrong, per address
// (the global per-address limit's size: an admin's bulk work is not
// slowed by it).
var LimitAdminAttempts = Limit{Points: 3000, Window: 5 * time.Minute}

// NewAdminThrottle returns the admin password throttle, tracking at most
// maxKeys addresses (DefaultMaxKeys when ≤ 0). Use it as a LoginThrottle
// with the identifier AdminIdentifier and the client address.
func NewAdminThrottle(maxKeys int) *LoginThrottle {
	return NewLoginThrottle(LoginConfig{Limits: []Limit{LimitAdminAttempts}, MaxFailures: AdminMaxFailures,
		Lockout: AdminLockout, MaxKeys: maxKeys})
}

// AdminIdentifier is the identifier admin attempts are throttled under.
const AdminIdentifier = "admin"

// NewGlobalLimiter returns the reference's global per-address limit
// (global-ip: 3000 requests per 5 minutes), keyed by client address.
// Charge 1 per request.
func NewGlobalLimiter(maxKeys int) *Limiter { return NewLimiter(maxKeys, LimitGlobalIP) }

// NewCreateAccountLimiter returns createAccount's per-address limit (100
// per 5 minutes). Charge 1 per call.
func NewCreateAccountLimiter(maxKeys int) *Limiter { return NewLimiter(maxKeys, LimitCreateAccount) }
