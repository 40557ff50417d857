package commit

import "errors"

// Errors Build returns; callers map them to XRPC errors.
var (
	ErrNoWrites       = errors.New("commit: no writes")
	ErrTooManyWrites  = errors.New("commit: too many writes")
	ErrInvalidWrite   = errors.New("commit: invalid write")
	ErrInvalidRecord  = errors.New("commit: invalid record")
	ErrRecordTooLarge = errors.New("commit: record too large")
	ErrCommitTooLarge = errors.New("commit: commit too large")
	ErrRecordExists   = errors.New("commit: record already exists")
	ErrRecordNotFound = errors.New("commit: record not found")
	ErrInvalidSwap    = errors.New("commit: swap mismatch")
	ErrClock          = errors.New("commit: clock is behind the repo's last rev")
)

// RecordError is a record its lexicon refused. Message is meant for the
// client ("Invalid app.bsky.feed.post record: Record/text must not be …").
type RecordError struct{ Message string }

func (e *RecordError) Error() string { return e.Message }

// Is makes a RecordError match ErrInvalidRecord.
func (e *RecordError) Is(target error) bool { return target == ErrInvalidRecord }
