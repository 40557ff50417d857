package auth

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps exactly one of
// them (test with errors.Is); the text after "auth: " is the XRPC error
// name the reference PDS sends for the same failure, which
// [XRPCErrorName] returns.
var (
	// ErrInvalidToken: a session token (or the scope it carries) that does
	// not verify: bad signature, wrong secret, wrong alg/typ/aud/scope,
	// malformed, not yet valid. The reference answers 400 InvalidToken
	// (auth-verifier.ts verifyBearerJwt).
	ErrInvalidToken = errors.New("auth: InvalidToken")

	// ErrExpiredToken: a token that verifies in every respect except that
	// its exp has passed. The reference answers 400 ExpiredToken, which
	// clients take as "refresh the session".
	ErrExpiredToken = errors.New("auth: ExpiredToken")

	// ErrBadExpiration: a getServiceAuth exp that is in the past or too far
	// in the future (getServiceAuth.ts, 400 BadExpiration).
	ErrBadExpiration = errors.New("auth: BadExpiration")

	// ErrInvalidRequest: a request this package refuses for a reason the
	// reference reports as a plain 400 InvalidRequest (bad service-auth
	// aud, protected or privileged lxm, bad arguments).
	ErrInvalidRequest = errors.New("auth: InvalidRequest")

	// ErrPasswordTooLong: a new password longer than
	// [NewPasswordMaxLength] UTF-16 code units. It wraps ErrInvalidRequest.
	ErrPasswordTooLong = fmt.Errorf("%w: password too long", ErrInvalidRequest)

	// ErrEmptyPassword: HashPassword was given "". It wraps
	// ErrInvalidRequest.
	ErrEmptyPassword = fmt.Errorf("%w: empty password", ErrInvalidRequest)

	// ErrMalformedHash: a stored password hash that is not "salt:hex(64
	// bytes)". It means corrupt storage, never a wrong password.
	ErrMalformedHash = errors.New("auth: malformed password hash")
)

// XRPCErrorName returns the XRPC error name for an error of this package
// ("InvalidToken", "ExpiredToken", "BadExpiration", "InvalidRequest"), or ""
// for any other error. ErrMalformedHash maps to "" too: it is a server
// fault, not the client's.
func XRPCErrorName(err error) string {
	switch {
	case errors.Is(err, ErrExpiredToken):
		return "ExpiredToken"
	case errors.Is(err, ErrInvalidToken):
		return "InvalidToken"
	case errors.Is(err, ErrBadExpiration):
		return "BadExpiration"
	case errors.Is(err, ErrInvalidRequest):
		return "InvalidRequest"
	}
	return ""
}
