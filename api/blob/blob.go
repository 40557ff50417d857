package blob

import (
	"context"
	"io"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/repo"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
)

// Store is the part of a blob store this package uses (projections/blobstore).
type Store interface {
	// Put stores size bytes from r as did's blob c, atomically; storing an
	// existing blob again succeeds without rewriting it.
	Put(ctx context.Context, did syntax.DID, c cid.Cid, r io.Reader, size int64) error
	// Open reads n bytes (n < 0: to the end) of did's blob c from off.
	Open(ctx context.Context, did syntax.DID, c cid.Cid, off, n int64) (io.ReadCloser, error)
	// Delete removes did's blob c; a missing blob is not an error.
	Delete(ctx context.Context, did syntax.DID, c cid.Cid) error
	// DeleteAccount removes every blob of did.
	DeleteAccount(ctx context.Context, did syntax.DID) error
}

// DefaultMaxSize is the upload limit when none is set: the reference
// installer's PDS_BLOB_UPLOAD_LIMIT.
const DefaultMaxSize = 104857600

// Handlers serve the blob methods.
type Handlers struct {
	Store    Store
	Index    *blobs.Projection
	Accounts *accounts.Projection
	Writer   *repo.Writer // its per-account lock, log and runner
	Log      *eventlog.Log
	Runner   *projections.Runner
	// TempDir holds uploads while they stream in (PDS_BLOBSTORE_DISK_TMP_LOCATION).
	TempDir string
	// MaxSize is the largest upload accepted (PDS_BLOB_UPLOAD_LIMIT); 0 means DefaultMaxSize.
	MaxSize int64
	// Limiter, if set, limits uploads per client IP.
	Limiter *auth.Limiter
	Now     func() time.Time
	// RepoGate, if set, refuses reads of repos this caller may not read
	// (deactivated, taken down, deleted …) with the lexicon's error.
	RepoGate func(c echo.Context, did syntax.DID) error
}

func (h *Handlers) maxSize() int64 {
	if h.MaxSize > 0 {
		return h.MaxSize
	}
	return DefaultMaxSize
}

func (h *Handlers) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// DeleteAccountBlobs removes a deleted account's blob bytes.
func (h *Handlers) DeleteAccountBlobs(ctx context.Context, did syntax.DID) error {
	return h.Store.DeleteAccount(ctx, did)
}
