// Package ratelimit holds pdslog's in-memory rate limits: the reference
// PDS's per-IP, per-identifier and per-account budgets, enforced at the
// XRPC edge before a request reaches the write path.
//
// [Limiter] is a bounded, in-memory, fixed-window limiter over one or more
// limits ([Limit]) per key, charged atomically, with [Decision.SetHeaders] writing
// the reference's RateLimit-* and Retry-After headers. On it are built
// [LoginThrottle] (createSession: 30 per 5 minutes and 300 per day per
// identifier+IP, plus a lockout after 5 consecutive failures for 15
// minutes), [WriteLimiter] (5000 points per hour and 35000 per day per
// account; create 3, update 2, delete 1), the updateHandle and uploadBlob
// limiters, the per-address global (3000 per 5 minutes) and createAccount
// (100 per 5 minutes) limiters, and the admin password throttle
// ([NewAdminThrottle]: 10 wrong passwords in a row lock an address out for
// 15 minutes). [Binding] picks the headers of several limits charged
// together. Time is always passed in, for tests.
//
// Every limiter keys its state by a fixed-size hash (16 bytes of SHA-256)
// of the key it is given, so its memory is bounded in bytes — at most
// EntryBytes per tracked key and limit (StreakBytes per failure streak),
// MaxBytes in all — however long the keys (identifiers) a client sends.
//
// # Deviations from the reference
//
//   - The login throttle keys on the normalised (trimmed, lower-cased)
//     identifier, not the raw one, and adds the lockout; pending attempts
//     count towards it so that concurrent guesses cannot outrun it.
//   - A charge refused by one limit is counted against none (the
//     reference's combined limiter charges each limit separately).
//   - Per-address limits key IPv6 clients by /64 (netguard.Key), not by
//     the single address, and admin passwords are throttled.
package ratelimit
