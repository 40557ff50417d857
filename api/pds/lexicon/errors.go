package lexicon

import "errors"

// ErrInvalidRecord is what every error from Validate matches. The error's
// own text is the reference PDS's message (for example "Invalid
// app.bsky.feed.post record: Record/createdAt must be a valid datetime"),
// fit to send to the client as the message of an InvalidRequest error.
var ErrInvalidRecord = errors.New("lexicon: invalid record")

// invalidError carries the client-facing message and matches
// ErrInvalidRecord.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalidRecord }

func invalid(msg string) error { return &invalidError{msg: msg} }
