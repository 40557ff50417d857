package pds

import (
	"errors"
	"fmt"
)

// Errors of the write side. Each is returned wrapped in an *Error whose
// message is meant for the caller (the reference PDS's wording where it has
// one); api/xrpc maps each to its XRPC error name and status.
var (
	// Repos and records.
	ErrRepoNotFound    = errors.New("pds: repo not found")
	ErrRepoInactive    = errors.New("pds: repo is not active")
	ErrSwapCommit      = errors.New("pds: swapCommit does not match the repo head")
	ErrConcurrentWrite = errors.New("pds: a concurrent write changed the repo")

	// Accounts.
	ErrAccountNotFound    = errors.New("pds: account not found")
	ErrAccountTakendown   = errors.New("pds: account has been taken down")
	ErrAccountDeactivated = errors.New("pds: account is deactivated")
	ErrInvalidHandle      = errors.New("pds: invalid handle")
	ErrUnsupportedDomain  = errors.New("pds: handle domain not hosted here")
	ErrHandleNotAvailable = errors.New("pds: handle not available")
	ErrInvalidInviteCode  = errors.New("pds: invite code not available")
	ErrPLC                = errors.New("pds: the PLC directory refused the operation")
	// ErrInvalidInput is input the write side refuses for any other
	// reason (missing email, weak password, taken email, bad recovery
	// key, bad invite count …); the message says which.
	ErrInvalidInput = errors.New("pds: invalid input")

	// Sessions and app passwords.
	ErrSessionRevoked = errors.New("pds: session revoked")
	// ErrPasswordBusy: a password could not be hashed or checked now (too
	// many in flight server-wide; see Options.PasswordHashers).
	ErrPasswordBusy = errors.New("pds: password hashing is busy")

	// Blobs.
	ErrBlobNotFound    = errors.New("pds: blob not found")
	ErrInvalidMimeType = errors.New("pds: blob mime type mismatch")
)

// Error is a write-side error with a message for the caller.
type Error struct {
	Kind error  // one of this package's sentinels
	Msg  string // for the caller
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// errorf returns an *Error of kind with a formatted message.
func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
