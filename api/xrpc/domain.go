package xrpc

import (
	"errors"
	"net/http"
	"strings"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/commit"
)

// domainErrors map the write side's sentinels to XRPC errors: the one
// place a domain error gets its name and status. The message is the
// error's own (a *pds.Error's Msg is written for the caller) unless a fixed
// one is given.
var domainErrors = []struct {
	err     error
	status  int
	name    string
	message string
}{
	{pds.ErrBadLogin, http.StatusUnauthorized, "AuthenticationRequired", ""},
	{pds.ErrAuthFactorTokenRequired, http.StatusUnauthorized, "AuthFactorTokenRequired", ""},
	{pds.ErrInvalidToken, http.StatusBadRequest, "InvalidToken", ""},
	{pds.ErrExpiredToken, http.StatusBadRequest, "ExpiredToken", ""},
	{pds.ErrTokenRequired, http.StatusBadRequest, "TokenRequired", ""},
	{pds.ErrInvalidEmail, http.StatusBadRequest, "InvalidEmail", ""},
	{pds.ErrMailNotConfigured, http.StatusNotImplemented, "MethodNotImplemented", ""},
	{pds.ErrMailRateLimited, http.StatusTooManyRequests, "RateLimitExceeded", ""},
	{pds.ErrImportsDisabled, http.StatusBadRequest, "InvalidRequest", ""},
	{pds.ErrInvalidImport, http.StatusBadRequest, "InvalidRequest", ""},
	{pds.ErrImportTooLarge, http.StatusBadRequest, "InvalidRequest", ""},
	{pds.ErrIncompatibleDIDDoc, http.StatusBadRequest, "InvalidRequest", ""},
	{pds.ErrRepoNotFound, http.StatusBadRequest, "InvalidRequest", ""},
	{pds.ErrRecordNotFound, http.StatusBadRequest, "RecordNotFound", ""},
	{pds.ErrRepoInactive, http.StatusBadRequest, "InvalidRequest", ""},
	{pds.ErrSwapCommit, http.StatusBadRequest, "InvalidSwap", ""},
	{pds.ErrConcurrentWrite, http.StatusBadRequest, "InvalidSwap", ""},
	{commit.ErrInvalidSwap, http.StatusBadRequest, "InvalidSwap", ""},
	{pds.ErrAccountNotFound, http.StatusBadRequest, "AccountNotFound", ""},
	// The reference's checkTakedown / checkDeactivated answers (401): the
	// Bluesky app keys its screens on these names.
	{pds.ErrAccountTakendown, http.StatusUnauthorized, "AccountTakedown", ""},
	{pds.ErrAccountDeactivated, http.StatusUnauthorized, "AccountDeactivated", ""},
	{pds.ErrInvalidHandle, http.StatusBadRequest, "InvalidHandle", ""},
	{pds.ErrUnsupportedDomain, http.StatusBadRequest, "UnsupportedDomain", ""},
	{pds.ErrHandleNotAvailable, http.StatusBadRequest, "HandleNotAvailable", ""},
	{pds.ErrInvalidInviteCode, http.StatusBadRequest, "InvalidInviteCode", ""},
	{pds.ErrPLC, http.StatusBadGateway, "UpstreamFailure", ""},
	{pds.ErrInvalidInput, http.StatusBadRequest, "InvalidRequest", ""},
	{pds.ErrSessionRevoked, http.StatusBadRequest, "InvalidToken", ""},
	{pds.ErrPasswordBusy, http.StatusServiceUnavailable, "ServiceUnavailable", "the server is busy checking passwords; try again shortly"},
	{pds.ErrBlobNotFound, http.StatusBadRequest, "BlobNotFound", ""},
	{pds.ErrInvalidMimeType, http.StatusBadRequest, "InvalidMimeType", ""},
	{commit.ErrInvalidRecord, http.StatusBadRequest, "InvalidRequest", ""},
	{commit.ErrRecordTooLarge, http.StatusBadRequest, "InvalidRequest", ""},
	{commit.ErrCommitTooLarge, http.StatusBadRequest, "InvalidRequest", ""},
	{commit.ErrInvalidWrite, http.StatusBadRequest, "InvalidRequest", ""},
	{commit.ErrRecordExists, http.StatusBadRequest, "InvalidRequest", ""},
	{commit.ErrRecordNotFound, http.StatusBadRequest, "InvalidRequest", ""},
	{commit.ErrClock, http.StatusServiceUnavailable, "ServiceUnavailable", "the server cannot write right now"},
}

// fromDomain returns the XRPC error for a write-side error, or nil if err
// is none of them.
func fromDomain(err error) *Error {
	var re *commit.RecordError
	if errors.As(err, &re) {
		return InvalidRequest("%s", re.Message)
	}
	if errors.Is(err, commit.ErrTooManyWrites) {
		return InvalidRequest("Too many writes. Max: %d", commit.MaxOps)
	}
	for _, d := range domainErrors {
		if !errors.Is(err, d.err) {
			continue
		}
		msg := d.message
		if msg == "" {
			msg = domainMessage(err)
		}
		e := &Error{Status: d.status, Name: d.name, Message: msg}
		if d.status >= 500 {
			e.Err = err
		}
		if errors.Is(err, pds.ErrPasswordBusy) {
			e.Header = http.Header{"Retry-After": {"1"}}
		}
		return e
	}
	return nil
}

// domainMessage is the caller's message of a domain error: a *pds.Error's
// own, or the error text without its package prefix.
func domainMessage(err error) string {
	var pe *pds.Error
	if errors.As(err, &pe) {
		return pe.Msg
	}
	msg := err.Error()
	for _, p := range []string{"commit: ", "pds: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}
