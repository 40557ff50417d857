// Package auth holds the credential primitives of pdslog's XRPC server:
// session tokens, password hashing, admin basic auth and inter-service auth tokens. It is pure logic (no HTTP handlers,
// no storage); the server wires it into its handlers and the accounts
// projection. Behaviour follows the reference PDS (bluesky-social/atproto,
// packages/pds) except where noted.
//
// # Session tokens
//
// [Tokens] issues and verifies the HS256 JWT pair of a legacy
// (createSession) session, as helpers/auth.ts and auth-verifier.ts do:
//
//   - access token: header typ "at+jwt"; claims scope
//     (com.atproto.access, or com.atproto.appPass /
//     com.atproto.appPassPrivileged for app-password sessions, or
//     com.atproto.takendown), aud = the service DID, sub = account DID,
//     jti, iat, exp = iat + 120 min;
//   - refresh token: header typ "refresh+jwt"; scope com.atproto.refresh,
//     aud, sub, jti = the session id, iat, exp = iat + 90 days.
//
// [Tokens.Issue] is deterministic in ([SessionParams], secret, service
// DID), byte for byte: the access jti is an HMAC of the inputs
// ([Tokens.AccessTokenID]) rather than random. refreshSession relies on it
// to answer a rotated refresh token presented again within
// [RefreshReuseWindow] (30 s) with the same successor pair, from the
// successor's stored id and issued-at.
//
// [Tokens.VerifyAccess] and [Tokens.VerifyRefresh] refuse anything but a
// token of the right kind signed with HS256 under the secret for this
// service: errors wrap [ErrExpiredToken] for an otherwise valid expired
// token, [ErrInvalidToken] for every other fault; [XRPCErrorName] maps them
// to the reference's error names. Which scope may call which method is
// [Scope.AllowsMethod] (full-access-only methods, the privileged chat and
// createAccount methods, the takendown and signup-queued allow-lists), and
// [IsProtectedMethod] lists the methods never proxied nor service-authed.
//
// # Passwords
//
// [HashPassword] and [VerifyPassword] use the reference's scrypt format
// (helpers/scrypt.ts): "salt:hash", salt the hex of 16 random bytes (used
// as its hex string), hash the hex of scrypt N=16384 r=8 p=1, 64 bytes.
// Hashes are interchangeable with the reference's. App passwords
// ([NewAppPassword], "xxxx-xxxx-xxxx-xxxx" in lowercase base32) are hashed
// with a salt derived from the DID ([HashAppPassword]), so they can be found
// by hash: [MatchAppPassword] checks an attempt against all of an
// account's app passwords with one scrypt. Length limits are the
// reference's: 256 UTF-16 code units for a new password, 512 for one
// presented at login. Each scrypt takes [ScryptMemory] (16 MiB) and tens of
// milliseconds; a [HashGate] bounds how many run at once server-wide,
// queueing the rest for a while, then refusing them ([ErrHashBusy]).
//
// # Admin and service auth
//
// [CheckAdmin] checks HTTP Basic credentials admin:<admin password> in
// constant time. [ServiceJWT] signs an inter-service token (ES256K or
// ES256 with the account's atcrypto key, raw low-S signature) that indigo's
// atproto/auth ServiceAuthValidator accepts; [CheckServiceAuthRequest]
// applies getServiceAuth's rules to a request first.
//
// # Deviations from the reference
//
//   - Access tokens carry a jti (derived, see above); the reference's carry
//     none. Session ids are base64url, the reference's standard base64.
//   - A rotated refresh token is answered again for 30 s with the identical
//     successor pair; the reference re-signs within a 2-hour grace period.
//   - Verification tolerates [ClockLeeway] (5 s) of clock skew and refuses
//     an iat in the future; the reference (jose) has no leeway and does not
//     look at iat.
//   - getServiceAuth: a takendown session may get a token for
//     com.atproto.server.createAccount (account migration), as the
//     reference's comment intends; the reference's code refuses it because
//     createAccount is also a privileged method.
//   - HashPassword refuses the empty password.
package auth
