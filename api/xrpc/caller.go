package xrpc

import (
	"fmt"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/oauthcore"
)

// Caller is who made an authenticated request.
type Caller struct {
	DID   syntax.DID
	Scope string // the token's scope (com.atproto.access, com.atproto.appPass, …)
	// OAuth is set for a caller with an OAuth (DPoP-bound) access token:
	// what its scope allows. Scope is then app-password-like (privileged),
	// and OAuth limits it further.
	OAuth *oauthcore.Permissions
	// ClientID is the OAuth client's id.
	ClientID string
}

// ScopeMissing is the 403 of an OAuth caller whose scope lacks the
// permission a call needs (the reference's ScopeMissingError).
func ScopeMissing(scope string) *Error {
	return &Error{Status: http.StatusForbidden, Name: "ScopeMissingError", Message: fmt.Sprintf("Missing required scope %q", scope)}
}

const callerKey = "pdslog.caller"

// SetCaller records the authenticated caller on the request (auth middleware).
func SetCaller(c echo.Context, caller *Caller) { c.Set(callerKey, caller) }

// GetCaller returns the authenticated caller, or nil.
func GetCaller(c echo.Context) *Caller {
	v, _ := c.Get(callerKey).(*Caller)
	return v
}

// AuthRequired is the 401 for a request without valid credentials.
func AuthRequired(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Name: "AuthRequired", Message: msg}
}

// AuthMissing is the 401 for a request that carries no credentials where
// they are required: the reference's AuthRequiredError(undefined,
// 'AuthMissing').
func AuthMissing() *Error {
	return &Error{Status: http.StatusUnauthorized, Name: "AuthMissing", Message: "Authentication Required"}
}

// RequireCaller returns the caller, or the 401 AuthMissing.
func RequireCaller(c echo.Context) (*Caller, error) {
	if caller := GetCaller(c); caller != nil {
		return caller, nil
	}
	return nil, AuthMissing()
}
