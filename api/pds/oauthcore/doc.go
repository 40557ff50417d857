// Package oauthcore is the pure logic of pdslog's OAuth authorization
// server and resource server (the atproto OAuth profile, atproto.com/specs/
// oauth, as the reference's packages/oauth/oauth-provider implements it):
// no HTTP handlers and no storage.
//
//   - [Error]: OAuth error responses (RFC 6749 §5.2, RFC 9449, RFC 6750).
//   - DPoP (RFC 9449): [VerifyProof] checks a proof (ES256, embedded public
//     JWK, typ, htm, htu, iat, jti, ath, nonce) and gives its key's
//     thumbprint; [Nonces] are the server's rotating nonces (an HMAC of the
//     minute, random secret per process: a proof from before a restart
//     carries a nonce no longer accepted, so the in-memory [Replay] cache of
//     proof jtis is enough); [Replay] refuses a jti seen before.
//   - PKCE: [CheckPKCE] (S256 only).
//   - Clients: [Resolver] turns a client_id into a validated [Client]: a
//     loopback development client (http://localhost?redirect_uri=…&scope=…)
//     or a discoverable client whose metadata document is fetched over an
//     SSRF-guarded HTTP client, with a size cap, a timeout and a cache;
//     [Client.Authenticate] checks a confidential client's private_key_jwt
//     assertion (ES256, jwks or jwks_uri); [Client.RedirectURIAllowed]
//     compares redirect URIs exactly (any port for loopback IPs).
//   - Scopes: [ParseRequestScope] validates a requested scope with indigo's
//     atproto/auth permission parser; [Permissions] answers what a granted
//     scope allows (repo, blob, rpc, account, identity, and the transition
//     scopes as the reference's ScopePermissionsTransition); [Describe]
//     puts each permission in plain words for the consent page.
//   - Access tokens: [Signer] signs and verifies the DPoP-bound access token
//     JWTs (HS256 under a key derived from the JWT secret, as the reference
//     PDS: no public JWKS is needed).
//
// Lifetimes are the reference's (oauth-constants.ts).
package oauthcore

import "time"

// Lifetimes (the reference's oauth-constants.ts).
const (
	// RequestLifetime is a pushed request's life (PAR_EXPIRES_IN).
	RequestLifetime = 5 * time.Minute
	// InactivityTimeout extends a request when a device opens it, and is
	// the life of a code (AUTHORIZATION_INACTIVITY_TIMEOUT).
	InactivityTimeout = 5 * time.Minute
	// AccessTokenLifetime is an access token's life (TOKEN_MAX_AGE).
	AccessTokenLifetime = 60 * time.Minute
	// SessionLifetime bounds a public client's session (SESSION_LIFETIME)
	// and RefreshLifetime its inactivity (REFRESH_LIFETIME).
	SessionLifetime = 14 * 24 * time.Hour
	RefreshLifetime = 14 * 24 * time.Hour
	// SessionLifetimeExtended and RefreshLifetimeExtended are a
	// confidential client's (2 years, 3 months).
	SessionLifetimeExtended = time.Duration(2 * 365.25 * 24 * float64(time.Hour))
	RefreshLifetimeExtended = time.Duration(365.25 / 4 * 24 * float64(time.Hour))
	// AuthenticationMaxAge is how long a remembered sign-in on a device
	// lets its account authorize without the password again.
	AuthenticationMaxAge = 7 * 24 * time.Hour
	// EphemeralSessionMaxAge is how long a sign-in not remembered lasts.
	EphemeralSessionMaxAge = 15 * time.Minute
	// NonceMaxAge is how long a DPoP nonce is accepted (DPOP_NONCE_MAX_AGE).
	NonceMaxAge = 3 * time.Minute
	// ProofMaxAge is how old a DPoP proof's iat may be, beyond the clock
	// tolerance of NonceMaxAge (the reference's maxTokenAge: 10 s).
	ProofMaxAge = 10 * time.Second
	// ClientAssertionMaxAge is how old a client assertion may be.
	ClientAssertionMaxAge = time.Minute
)

// Prefixes of the opaque identifiers, as the reference's (which makes
// them easy to tell apart in logs and token stores).
const (
	PrefixRequest = "req-"
	PrefixCode    = "cod-"
	PrefixRefresh = "ref-"
	PrefixToken   = "tok-"
	PrefixSession = "ses-"
	PrefixDevice  = "dev-"
	// RequestURIPrefix is the request_uri scheme of RFC 9126.
	RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"
)
