package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

var (
	// ErrNotFound is returned (wrapped) for a blob the store does not hold.
	ErrNotFound = errors.New("blobstore: not found")
	// ErrRange is returned (wrapped) by Open for an offset past the end of
	// the blob, or a negative one.
	ErrRange = errors.New("blobstore: range outside the blob")
	// ErrSize is returned (wrapped) by Put when the reader gives more or
	// fewer bytes than the size it was called with.
	ErrSize = errors.New("blobstore: size mismatch")
)

// Store keeps blob bytes, per account. Implementations are safe for
// concurrent use.
type Store interface {
	// Put stores size bytes read from r as did's blob c. It is atomic: the
	// blob is visible (Open, Stat, List) only once complete, and a Put that
	// fails for any reason (a reader error, fewer or more than size bytes,
	// a cancelled ctx) leaves nothing visible. Storing a blob that is
	// already there succeeds without reading r. Concurrent Puts of the same
	// blob all succeed. The store trusts c: callers hash the bytes first.
	//
	// r is read once, from its current position; when it is also an
	// io.ReaderAt and io.Seeker (an *os.File) backends may read it in
	// sections instead of buffering.
	Put(ctx context.Context, did syntax.DID, c cid.Cid, r io.Reader, size int64) error

	// Open reads did's blob c from byte off: n bytes, or to the end when n
	// is negative or runs past it (as an HTTP Range asks). off equal to the
	// size gives an empty reader; off past it is ErrRange. A missing blob
	// is ErrNotFound. The reader honours ctx; the caller closes it.
	Open(ctx context.Context, did syntax.DID, c cid.Cid, off, n int64) (io.ReadCloser, error)

	// Stat returns the size of did's blob c, or ErrNotFound.
	Stat(ctx context.Context, did syntax.DID, c cid.Cid) (size int64, err error)

	// Delete removes did's blob c. A missing blob is not an error.
	Delete(ctx context.Context, did syntax.DID, c cid.Cid) error

	// List returns up to limit (> 0) of did's blob CIDs that sort after
	// after (cid.Undef: from the first), ascending by their string form.
	// Fewer than limit means there are no more. An account with no blobs
	// has an empty list.
	List(ctx context.Context, did syntax.DID, after cid.Cid, limit int) ([]cid.Cid, error)

	// DeleteAccount removes every blob of did. An account with no blobs is
	// not an error. It must not run concurrently with Put for the same
	// account (callers hold the account's lock).
	DeleteAccount(ctx context.Context, did syntax.DID) error
}

// CheckKey validates a (did, c) key: a well-formed DID and a defined CID.
func CheckKey(did syntax.DID, c cid.Cid) error {
	if err := CheckDID(did); err != nil {
		return err
	}
	if !c.Defined() {
		return errors.New("blobstore: undefined CID")
	}
	return nil
}

// CheckDID validates an account DID.
func CheckDID(did syntax.DID) error {
	if _, err := syntax.ParseDID(string(did)); err != nil {
		return fmt.Errorf("blobstore: bad DID %q: %w", string(did), err)
	}
	return nil
}

// CheckList validates List's limit.
func CheckList(limit int) error {
	if limit <= 0 {
		return fmt.Errorf("blobstore: list limit %d, want > 0", limit)
	}
	return nil
}

// Span resolves Open's (off, n) against a blob of size bytes into the
// length to read, or ErrRange.
func Span(off, n, size int64) (int64, error) {
	if off < 0 || off > size {
		return 0, fmt.Errorf("%w: offset %d of %d bytes", ErrRange, off, size)
	}
	if n < 0 || n > size-off {
		n = size - off
	}
	return n, nil
}

// ContextReader reads r until ctx is done, then fails with ctx's error:
// backends wrap callers' readers with it so a cancelled Put stops reading.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
