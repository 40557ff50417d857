package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Authorization schemes the reference recognises (auth-verifier.ts
// AuthType); matched case-insensitively.
const (
	SchemeBasic  = "Basic"
	SchemeBearer = "Bearer"
	SchemeDPoP   = "DPoP"
)

// ParseAuthorization splits an Authorization header the reference's way
// (parseAuthorizationHeader): "" is no credentials (scheme ""); otherwise
// it must be exactly "<scheme> <credentials>" (one space) with scheme
// Basic, Bearer or DPoP in any case, returned in canonical case. Anything
// else wraps ErrInvalidToken ("Malformed authorization header",
// "Unsupported authorization type").
func ParseAuthorization(header string) (scheme, credentials string, err error) {
	if header == "" {
		return "", "", nil
	}
	parts := strings.Split(header, " ")
	if len(parts) != 2 {
		return "", "", fmt.Errorf("%w: malformed authorization header", ErrInvalidToken)
	}
	switch strings.ToUpper(parts[0]) {
	case "BASIC":
		return SchemeBasic, parts[1], nil
	case "BEARER":
		return SchemeBearer, parts[1], nil
	case "DPOP":
		return SchemeDPoP, parts[1], nil
	}
	return "", "", fmt.Errorf("%w: unsupported authorization type: %s", ErrInvalidToken, parts[0])
}

// BearerToken returns the token of a "Bearer <token>" header; ok is false
// for no header or another scheme, err set for a malformed one.
func BearerToken(header string) (token string, ok bool, err error) {
	scheme, cred, err := ParseAuthorization(header)
	if err != nil || scheme != SchemeBearer {
		return "", false, err
	}
	return cred, true, nil
}

var errNoBasic = errors.New("not basic auth")

// parseBasic decodes "Basic base64(user:password)" (padded or not).
func parseBasic(header string) (user, pass string, err error) {
	scheme, cred, err := ParseAuthorization(header)
	if err != nil {
		return "", "", err
	}
	if scheme != SchemeBasic {
		return "", "", errNoBasic
	}
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(cred); err != nil {
			return "", "", err
		}
	}
	// split at the first colon: the password may contain colons
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errNoBasic
	}
	return user, pass, nil
}

// CheckAdmin reports whether authorization (an Authorization header value)
// is HTTP Basic auth as user "admin" with password adminPassword, the
// reference's adminToken verifier. It is always false when adminPassword
// is "" (no admin password configured). Both fields are compared in
// constant time over their SHA-256 digests, so neither their content nor
// their length leaks through timing.
func CheckAdmin(authorization, adminPassword string) bool {
	if adminPassword == "" {
		return false
	}
	user, pass, err := parseBasic(authorization)
	if err != nil {
		return false
	}
	uh, wu := sha256.Sum256([]byte(user)), sha256.Sum256([]byte("admin"))
	ph, wp := sha256.Sum256([]byte(pass)), sha256.Sum256([]byte(adminPassword))
	okUser := subtle.ConstantTimeCompare(uh[:], wu[:])
	okPass := subtle.ConstantTimeCompare(ph[:], wp[:])
	return okUser&okPass == 1
}
