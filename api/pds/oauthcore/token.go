package oauthcore

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TypAccessToken is the JOSE typ of access tokens (RFC 9068).
const TypAccessToken = "at+jwt"

// AccessClaims are an access token's claims.
type AccessClaims struct {
	Issuer    string `json:"iss"`
	Audience  string `json:"aud"`
	Subject   string `json:"sub"`
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	JTI       string `json:"jti"`
	SessionID string `json:"sid"`
	Cnf       struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
	IssuedAt  int64 `json:"iat"`
	ExpiresAt int64 `json:"exp"`
}

func (c *AccessClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}
func (c *AccessClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}
func (c *AccessClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *AccessClaims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c *AccessClaims) GetSubject() (string, error)             { return c.Subject, nil }
func (c *AccessClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

// Signer signs and verifies access tokens of one issuer for one audience
// (the PDS's service DID), HS256 under key.
type Signer struct {
	Issuer   string
	Audience string
	key      []byte
}

// NewSigner returns a signer with key (copied).
func NewSigner(issuer, audience string, key []byte) *Signer {
	return &Signer{Issuer: issuer, Audience: audience, key: append([]byte(nil), key...)}
}

// Sign signs c (its iss and aud are set to the signer's).
func (s *Signer) Sign(c AccessClaims) (string, error) {
	c.Issuer, c.Audience = s.Issuer, s.Audience
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, &c)
	t.Header["typ"] = TypAccessToken
	return t.SignedString(s.key)
}

// Looks reports whether token is shaped like one of this signer's tokens
// (typ at+jwt, HS256, with a cnf claim), whether or not it verifies: a
// DPoP-bound token presented as a Bearer token is told apart this way.
func (s *Signer) Looks(token string) bool {
	var c AccessClaims
	t, _, err := jwt.NewParser().ParseUnverified(token, &c)
	if err != nil {
		return false
	}
	typ, _ := t.Header["typ"].(string)
	return typ == TypAccessToken && c.Cnf.JKT != "" && c.Issuer == s.Issuer
}

// Verify checks token's signature, typ, issuer, audience and expiry at
// now. Errors are *Error (invalid_token).
func (s *Signer) Verify(token string, now time.Time) (*AccessClaims, error) {
	if len(token) > 8<<10 {
		return nil, InvalidToken("token too long")
	}
	var c AccessClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(s.Issuer), jwt.WithAudience(s.Audience),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithLeeway(5*time.Second), jwt.WithStrictDecoding())
	t, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.key, nil })
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, InvalidToken("Token expired")
		}
		return nil, InvalidToken("Invalid token: %v", err)
	}
	if typ, _ := t.Header["typ"].(string); typ != TypAccessToken {
		return nil, InvalidToken("Invalid token type")
	}
	if c.Subject == "" || c.JTI == "" || c.SessionID == "" || c.Cnf.JKT == "" {
		return nil, InvalidToken("Malformed token")
	}
	return &c, nil
}
