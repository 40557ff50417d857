package oauthcore

import (
	"fmt"
	"net/http"
	"strings"
)

// Error is an OAuth error: the error code of the specs, a description for
// the client and the HTTP status it is answered with.
type Error struct {
	Code        string
	Description string
	Status      int
	// Nonce, when set, is sent as the DPoP-Nonce header (use_dpop_nonce).
	Nonce string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...), Status: status}
}

// Constructors for the errors of RFC 6749 §5.2 / §4.1.2.1, RFC 9126,
// RFC 9449 and RFC 7591 that the server answers.
func InvalidRequest(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "invalid_request", format, args...)
}
func InvalidClient(format string, args ...any) *Error {
	return errorf(http.StatusUnauthorized, "invalid_client", format, args...)
}
func InvalidClientMetadata(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "invalid_client_metadata", format, args...)
}
func InvalidGrant(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "invalid_grant", format, args...)
}
func InvalidScope(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "invalid_scope", format, args...)
}
func UnsupportedGrantType(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "unsupported_grant_type", format, args...)
}
func AccessDenied(format string, args ...any) *Error {
	return errorf(http.StatusForbidden, "access_denied", format, args...)
}
func InvalidDPoPProof(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "invalid_dpop_proof", format, args...)
}
func UseDPoPNonce(nonce string) *Error {
	return &Error{Code: "use_dpop_nonce", Description: "Authorization server requires nonce in DPoP proof", Status: http.StatusBadRequest, Nonce: nonce}
}
func InvalidToken(format string, args ...any) *Error {
	return errorf(http.StatusUnauthorized, "invalid_token", format, args...)
}
func ServerError(format string, args ...any) *Error {
	return errorf(http.StatusInternalServerError, "server_error", format, args...)
}

// WWWAuthenticate is the header a resource server answers e with
// (RFC 6750 §3, RFC 9449 §7.1): scheme DPoP (or Bearer) with the error and
// its description, and the algorithms DPoP proofs may use.
func (e *Error) WWWAuthenticate(scheme string) string {
	desc := strings.ReplaceAll(e.Description, `"`, "'")
	h := fmt.Sprintf(`%s error="%s", error_description="%s"`, scheme, e.Code, desc)
	if scheme == "DPoP" {
		h += `, algs="ES256"`
	}
	return h
}
