package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"
)

// Session token parameters (helpers/auth.ts).
const (
	// AccessTokenTTL is the lifetime of an access token ("120mins").
	AccessTokenTTL = 120 * time.Minute
	// RefreshTokenTTL is the lifetime of a refresh token ("90days").
	RefreshTokenTTL = 90 * 24 * time.Hour

	// TypAccess is the JOSE "typ" header of access tokens (RFC 9068).
	TypAccess = "at+jwt"
	// TypRefresh is the JOSE "typ" header of refresh tokens.
	TypRefresh = "refresh+jwt"

	// RefreshReuseWindow is how long after a refresh token's rotation
	// pdslog answers that same token again with the same successor pair
	// (re-issued byte-identically with Issue from the successor's stored id
	// and issued-at) rather than refusing it: enough for a client whose
	// response was lost to retry. The reference allows 2 hours
	// (REFRESH_GRACE_MS in account-manager.ts) and re-signs each time.
	RefreshReuseWindow = 30 * time.Second

	// ClockLeeway is the clock skew tolerated on exp, nbf and iat.
	ClockLeeway = 5 * time.Second

	// MaxTokenLength bounds what the verifiers will parse; our tokens are
	// well under 1 KiB.
	MaxTokenLength = 8 << 10

	// maxSessionIDLength bounds session ids (ours are 43 characters).
	maxSessionIDLength = 128
)

// Tokens issues and verifies the HS256 session tokens of one service. It is
// safe for concurrent use.
type Tokens struct {
	secret     []byte
	jtiKey     []byte
	serviceDID syntax.DID
}

// NewTokens returns the token issuer/verifier for the service serviceDID
// (the "aud" of every token, e.g. did:web:pds.example.com) signing with
// secret (the configured JWT secret; it must not be empty). secret is
// copied.
func NewTokens(secret []byte, serviceDID syntax.DID) (*Tokens, error) {
	if len(secret) == 0 {
		return nil, errors.New("auth: empty JWT secret")
	}
	if _, err := syntax.ParseDID(string(serviceDID)); err != nil {
		return nil, fmt.Errorf("auth: service DID: %w", err)
	}
	s := append([]byte(nil), secret...)
	// The access-token jti key is derived from, not equal to, the signing
	// secret, so that jti values never double as HMAC-SHA256 outputs under
	// the signing key.
	m := hmac.New(sha256.New, s)
	m.Write([]byte("pdslog/api/auth access-token jti v1"))
	return &Tokens{secret: s, jtiKey: m.Sum(nil), serviceDID: serviceDID}, nil
}

// ServiceDID is the audience of this service's tokens.
func (t *Tokens) ServiceDID() syntax.DID { return t.serviceDID }

// NewSessionID returns a fresh refresh-token id: 32 random bytes,
// base64url without padding (43 characters). The reference uses 32 random
// bytes in standard base64 (getRefreshTokenId); URL-safe is the same
// entropy without characters that need escaping in logs and URLs.
func NewSessionID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SessionParams are everything a token pair is a function of. Issuing twice
// from equal SessionParams (with the same Tokens) gives byte-identical
// tokens.
type SessionParams struct {
	DID syntax.DID
	// SessionID is the refresh token's jti (from NewSessionID): the key of
	// the session record.
	SessionID string
	// Scope is the access token's scope: ScopeAccess, ScopeAppPass,
	// ScopeAppPassPrivileged or ScopeTakendown (see SessionScope). It must
	// be set: there is no default.
	Scope Scope
	// IssuedAt is the iat of both tokens; only whole seconds count.
	IssuedAt time.Time
}

// Session is an issued token pair.
type Session struct {
	AccessJwt  string
	RefreshJwt string
	// AccessID is the access token's jti (see AccessTokenID).
	AccessID string
	// IssuedAt is SessionParams.IssuedAt truncated to the second.
	IssuedAt         time.Time
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time
}

// Claims are the verified claims of a session token.
type Claims struct {
	DID   syntax.DID
	Scope Scope
	// SessionID is the session (refresh token) id: set for refresh tokens,
	// "" for access tokens (which do not carry it).
	SessionID string
	// TokenID is the jti: the session id for refresh tokens, the derived
	// AccessTokenID for ours (possibly "" in an access token from
	// elsewhere).
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// tokenClaims is the JWT payload of both token kinds. Times are integers
// (NumericDate in whole seconds), which keeps the encoding independent of
// golang-jwt's global TimePrecision. The order of the fields is the order
// of the encoded JSON.
type tokenClaims struct {
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub"`
	Jti   string `json:"jti,omitempty"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`

	// Never set by us: decoded only to be checked or refused.
	Nbf *int64          `json:"nbf,omitempty"`
	Lxm json.RawMessage `json:"lxm,omitempty"`
	Cnf json.RawMessage `json:"cnf,omitempty"`
}

// jwt.Claims, required by golang-jwt's API; claim validation is ours
// (verify), the library's is switched off.
func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.Exp, 0)), nil
}
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.Iat, 0)), nil
}
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) {
	if c.Nbf == nil {
		return nil, nil
	}
	return jwt.NewNumericDate(time.Unix(*c.Nbf, 0)), nil
}
func (c *tokenClaims) GetIssuer() (string, error)  { return "", nil }
func (c *tokenClaims) GetSubject() (string, error) { return c.Sub, nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Aud}, nil
}

func validSessionID(id string) bool {
	if id == "" || len(id) > maxSessionIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '+', c == '/', c == '=':
		default:
			return false
		}
	}
	return true
}

func (t *Tokens) checkParams(p SessionParams) error {
	if _, err := syntax.ParseDID(string(p.DID)); err != nil {
		return fmt.Errorf("%w: did: %v", ErrInvalidRequest, err)
	}
	if !validSessionID(p.SessionID) {
		return fmt.Errorf("%w: bad session id", ErrInvalidRequest)
	}
	if !p.Scope.IsAccess() {
		return fmt.Errorf("%w: bad access scope %q", ErrInvalidRequest, string(p.Scope))
	}
	if p.IssuedAt.Unix() <= 0 {
		return fmt.Errorf("%w: issued-at %v is not after 1970", ErrInvalidRequest, p.IssuedAt)
	}
	return nil
}

// AccessTokenID is the jti of the access token issued from p. The reference
// puts no jti in access tokens; ours carry one so that a token can be named
// (logs, deny lists), and it is derived rather than random so that issuing
// is deterministic:
//
//	K   = HMAC-SHA256(secret, "pdslog/api/auth access-token jti v1")
//	jti = base64url(HMAC-SHA256(K, did ‖ 0x00 ‖ sessionID ‖ 0x00 ‖ scope ‖ 0x00 ‖ decimal(iat seconds))[:16])
//
// (none of the fields can contain 0x00). Without the secret it is as
// unpredictable as a random 128-bit value; with it, the caller can recompute
// the jti of any access token of a session from the session record.
func (t *Tokens) AccessTokenID(p SessionParams) string {
	m := hmac.New(sha256.New, t.jtiKey)
	m.Write([]byte(p.DID))
	m.Write([]byte{0})
	m.Write([]byte(p.SessionID))
	m.Write([]byte{0})
	m.Write([]byte(p.Scope))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatInt(p.IssuedAt.Unix(), 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// Issue signs the access/refresh token pair of p.
//
// Access token: header {"alg":"HS256","typ":"at+jwt"}, claims scope
// (p.Scope), aud (service DID), sub (p.DID), jti (AccessTokenID), iat,
// exp = iat + 120 min. Refresh token: header {"alg":"HS256",
// "typ":"refresh+jwt"}, claims scope "com.atproto.refresh", aud, sub,
// jti = p.SessionID, iat, exp = iat + 90 days.
//
// Issue is a pure function of (p, secret, service DID): equal inputs give
// byte-identical tokens. That is what lets refreshSession hand a client that
// presents an already-rotated refresh token again (within the reuse window)
// the very same successor pair, from the successor's stored id and
// issued-at.
func (t *Tokens) Issue(p SessionParams) (Session, error) {
	if err := t.checkParams(p); err != nil {
		return Session{}, err
	}
	iat := time.Unix(p.IssuedAt.Unix(), 0).UTC()
	p.IssuedAt = iat
	s := Session{
		AccessID:         t.AccessTokenID(p),
		IssuedAt:         iat,
		AccessExpiresAt:  iat.Add(AccessTokenTTL),
		RefreshExpiresAt: iat.Add(RefreshTokenTTL),
	}
	var err error
	s.AccessJwt, err = t.sign(TypAccess, &tokenClaims{
		Scope: string(p.Scope),
		Aud:   string(t.serviceDID),
		Sub:   string(p.DID),
		Jti:   s.AccessID,
		Iat:   iat.Unix(),
		Exp:   s.AccessExpiresAt.Unix(),
	})
	if err != nil {
		return Session{}, err
	}
	s.RefreshJwt, err = t.sign(TypRefresh, &tokenClaims{
		Scope: string(ScopeRefresh),
		Aud:   string(t.serviceDID),
		Sub:   string(p.DID),
		Jti:   p.SessionID,
		Iat:   iat.Unix(),
		Exp:   s.RefreshExpiresAt.Unix(),
	})
	if err != nil {
		return Session{}, err
	}
	return s, nil
}

func (t *Tokens) sign(typ string, c *tokenClaims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["typ"] = typ
	s, err := tok.SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("auth: signing %s: %w", typ, err)
	}
	return s, nil
}

// VerifyAccess verifies an access token at time now and returns its claims.
// It accepts every access scope, including takendown and signupQueued:
// authorising the call is the next step, Claims.Scope.CheckMethod (or use
// VerifyAccessFor, which does both).
//
// Errors wrap ErrExpiredToken when the token is valid but for an exp in the
// past (beyond ClockLeeway), ErrInvalidToken otherwise: malformed, not HS256
// (alg "none" included), bad signature (forged, tampered or another
// secret), typ not "at+jwt", a refresh or unknown scope, sub not a DID, aud
// not this service, lxm or cnf present (service-auth and proof-of-possession
// tokens; auth-verifier.ts refuses them), iat or nbf in the future, exp or
// iat missing.
func (t *Tokens) VerifyAccess(token string, now time.Time) (Claims, error) {
	return t.verify(token, TypAccess, now, false)
}

// VerifyAccessFor is VerifyAccess followed by the scope check for calling
// method nsid (Scope.CheckMethod).
func (t *Tokens) VerifyAccessFor(token, nsid string, now time.Time) (Claims, error) {
	c, err := t.VerifyAccess(token, now)
	if err != nil {
		return Claims{}, err
	}
	if err := c.Scope.CheckMethod(nsid); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// VerifyRefresh verifies a refresh token at time now: as VerifyAccess, but
// typ must be "refresh+jwt", scope "com.atproto.refresh", and the jti (the
// session id) must be present. The session must still be looked up: a
// verified refresh token may have been revoked or rotated.
func (t *Tokens) VerifyRefresh(token string, now time.Time) (Claims, error) {
	return t.verify(token, TypRefresh, now, false)
}

// VerifyRefreshAllowExpired is VerifyRefresh without the exp check, for
// deleteSession (the reference's refresh({allowExpired: true})): a client
// may always revoke its own session.
func (t *Tokens) VerifyRefreshAllowExpired(token string, now time.Time) (Claims, error) {
	return t.verify(token, TypRefresh, now, true)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}

func (t *Tokens) verify(token, typ string, now time.Time, allowExpired bool) (Claims, error) {
	if token == "" {
		return Claims{}, invalid("empty token")
	}
	if len(token) > MaxTokenLength {
		return Claims{}, invalid("token too long")
	}
	var c tokenClaims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithoutClaimsValidation(), // done below, in a fixed order
		jwt.WithStrictDecoding(),      // one encoding per token: no malleable trailing bits
	)
	tok, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil })
	if err != nil {
		return Claims{}, invalid("%v", err)
	}
	// From here on the header and payload are the ones we signed (or ones
	// signed with our secret).
	if got, _ := tok.Header["typ"].(string); got != typ {
		return Claims{}, invalid("typ %v, want %q", tok.Header["typ"], typ)
	}
	if _, ok := tok.Header["crit"]; ok {
		return Claims{}, invalid("crit header")
	}
	if c.Lxm != nil || c.Cnf != nil {
		return Claims{}, invalid("malformed token")
	}
	scope := Scope(c.Scope)
	if typ == TypRefresh {
		if scope != ScopeRefresh {
			return Claims{}, invalid("bad token scope %q", c.Scope)
		}
		if c.Jti == "" {
			return Claims{}, invalid("missing refresh token id")
		}
	} else if !scope.IsAccess() {
		return Claims{}, invalid("bad token scope %q", c.Scope)
	}
	did, err := syntax.ParseDID(c.Sub)
	if err != nil {
		return Claims{}, invalid("sub: %v", err)
	}
	if c.Aud != string(t.serviceDID) {
		return Claims{}, invalid("aud %q is not this service", c.Aud)
	}
	if c.Iat <= 0 || c.Exp <= 0 {
		return Claims{}, invalid("missing iat or exp")
	}
	iat, exp := time.Unix(c.Iat, 0).UTC(), time.Unix(c.Exp, 0).UTC()
	early := now.Add(ClockLeeway)
	if iat.After(early) {
		return Claims{}, invalid("issued in the future")
	}
	if c.Nbf != nil && time.Unix(*c.Nbf, 0).After(early) {
		return Claims{}, invalid("not yet valid")
	}
	if !allowExpired && !now.Before(exp.Add(ClockLeeway)) {
		return Claims{}, fmt.Errorf("%w: token has expired", ErrExpiredToken)
	}
	out := Claims{DID: did, Scope: scope, TokenID: c.Jti, IssuedAt: iat, ExpiresAt: exp}
	if typ == TypRefresh {
		out.SessionID = c.Jti
	}
	return out, nil
}
