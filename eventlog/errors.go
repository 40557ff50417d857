package eventlog

import "errors"

var (
	// ErrClosed is returned by every method of a closed Log.
	ErrClosed = errors.New("eventlog: closed")
	// ErrRevConflict is returned by Append when a commit's since does not name
	// the repo's current rev, or its rev does not move the repo forward.
	ErrRevConflict = errors.New("eventlog: rev conflict")
	// ErrFutureCursor is returned by Iter for a cursor past the durable head.
	ErrFutureCursor = errors.New("eventlog: cursor is in the future")
	// ErrInvalidEvent is returned by Append for an event that is malformed
	// (missing DID, payload missing or not matching its kind, …).
	ErrInvalidEvent = errors.New("eventlog: invalid event")
	// ErrFailed is returned once the log has failed to write or sync: nothing
	// after the failure is acknowledged; reopen the log to recover.
	ErrFailed = errors.New("eventlog: write failed")
	// ErrCorrupt is returned when a stored value cannot be decoded.
	ErrCorrupt = errors.New("eventlog: corrupt event")
	// ErrUnknownFormat is returned for a stored event whose format byte this
	// build does not know (a log written by a newer pdslog).
	ErrUnknownFormat = errors.New("eventlog: unknown event format")
	// ErrNotFound is returned by RepoHead for a repo with no head.
	ErrNotFound = errors.New("eventlog: not found")
	// ErrLocked is returned by Open when another process holds the log.
	ErrLocked = errors.New("eventlog: log is in use by another process")
)
