// Package xrpc holds the XRPC error type and the one place errors are
// rendered as {"error":"Name","message":"…"}.
package xrpc

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"syscall"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/eventlog"
)

// Error is an XRPC error: an HTTP status, the lexicon's error name, and a
// message for humans. Err, if set, is the cause (logged, never sent).
type Error struct {
	Status  int
	Name    string
	Message string
	Err     error
	Header  http.Header // extra response headers (rate limits)
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Name, e.Message, e.Err)
	}
	return e.Name + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// InvalidRequest is a 400 with the generic error name.
func InvalidRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Name: "InvalidRequest", Message: fmt.Sprintf(format, args...)}
}

// MethodNotImplemented is the 501 for XRPC methods nothing serves.
func MethodNotImplemented(nsid string) *Error {
	return &Error{Status: http.StatusNotImplemented, Name: "MethodNotImplemented", Message: "method not implemented: " + nsid}
}

// RepoUnavailable is the lexicon's error (400) for a read of a repo that is
// not active, by its status (the reference's assertRepoAvailability and
// the sync methods' errors); repo names it (a DID, or the handle asked
// for).
func RepoUnavailable(repo, status string) *Error {
	e := func(name, msg string) *Error { return &Error{Status: http.StatusBadRequest, Name: name, Message: msg} }
	switch status {
	case "takendown":
		return e("RepoTakendown", "Repo has been takendown: "+repo)
	case "suspended":
		return e("RepoSuspended", "Repo has been suspended: "+repo)
	case "deactivated":
		return e("RepoDeactivated", "Repo has been deactivated: "+repo)
	}
	// Statuses with no error of their own (desynchronized, throttled, or
	// none): the repo is not being served all the same.
	return e("RepoDeactivated", fmt.Sprintf("Repo is not active (status %q): %s", status, repo))
}

// Body is the JSON body of an error response.
type Body struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

// ErrorHandler renders every error a handler returns. Unknown errors become
// a 500 InternalServerError whose cause is logged, not sent.
func ErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var xe *Error
		var he *echo.HTTPError
		switch {
		case errors.As(err, &xe):
		case errors.As(err, &he):
			xe = fromHTTPError(he)
		case fromDomain(err) != nil:
			xe = fromDomain(err)
		case errors.Is(err, eventlog.ErrDiskFull), errors.Is(err, syscall.ENOSPC):
			// Nothing was written; the log accepts writes again once space
			// is freed, without a restart.
			xe = &Error{Status: http.StatusServiceUnavailable, Name: "ServiceUnavailable",
				Message: "the server's disk is full; writes resume when space is freed",
				Header:  http.Header{"Retry-After": {"60"}}, Err: err}
		case errors.Is(err, eventlog.ErrFailed), errors.Is(err, eventlog.ErrClosed):
			// The log failed (a write could not be made durable) or is
			// shutting down: the server cannot serve this until restarted.
			xe = &Error{Status: http.StatusServiceUnavailable, Name: "ServiceUnavailable", Message: "the server cannot use its event log right now", Err: err}
		default:
			xe = &Error{Status: http.StatusInternalServerError, Name: "InternalServerError", Message: "internal server error", Err: err}
		}
		if xe.Status == http.StatusInternalServerError || xe.Status == http.StatusServiceUnavailable {
			logger.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path,
				"status", xe.Status, "error_name", xe.Name, "err", err)
		}
		for k, vs := range xe.Header {
			for _, v := range vs {
				c.Response().Header().Add(k, v)
			}
		}
		body := Body{Error: xe.Name, Message: xe.Message}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(xe.Status)
			return
		}
		_ = c.JSON(xe.Status, body)
	}
}

func fromHTTPError(he *echo.HTTPError) *Error {
	msg := http.StatusText(he.Code)
	if s, ok := he.Message.(string); ok {
		msg = s
	}
	name := "InvalidRequest"
	switch {
	case he.Code == http.StatusNotFound:
		name = "NotFound"
	case he.Code == http.StatusMethodNotAllowed:
		name = "InvalidRequest"
	case he.Code == http.StatusRequestEntityTooLarge:
		name = "PayloadTooLarge"
	case he.Code == http.StatusTooManyRequests:
		name = "RateLimitExceeded"
	case he.Code >= 500:
		name = "InternalServerError"
	}
	return &Error{Status: he.Code, Name: name, Message: msg, Err: he.Internal}
}
