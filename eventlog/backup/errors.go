package backup

import "errors"

var (
	// ErrCorrupt is returned (wrapped) for an object that fails its checks:
	// a bad magic, a checksum or length mismatch, a record that does not
	// parse.
	ErrCorrupt = errors.New("backup: corrupt object")
	// ErrShortHeader is returned (wrapped) by DecodeSegmentHeader when the
	// bytes given end inside the header.
	ErrShortHeader = errors.New("backup: segment header continues past the bytes read")
	// ErrUnknownVersion is returned (wrapped) for an object written by a
	// newer pdslog.
	ErrUnknownVersion = errors.New("backup: unknown object version")
	// ErrNoBackup is returned (wrapped) by restore and status when the
	// URL holds no backup (or not the generation asked for).
	ErrNoBackup = errors.New("backup: no backup there")
	// ErrPassphrase is returned (wrapped) when the keys cannot be opened
	// with the passphrase or identity given.
	ErrPassphrase = errors.New("backup: wrong passphrase or identity for the keys")
	// ErrNotEmpty is returned (wrapped) by Restore when the destination
	// already holds a log.
	ErrNotEmpty = errors.New("backup: restore destination is not empty")
	// ErrBadURL is returned (wrapped) for a backup URL that is not
	// s3://BUCKET/PREFIX or file:///PATH.
	ErrBadURL = errors.New("backup: bad backup URL")
)
