package blob

import (
	"context"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/repo"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
)

// DefaultMaxSize is the upload limit when none is set: the reference
// installer's PDS_BLOB_UPLOAD_LIMIT.
const DefaultMaxSize = 104857600

// Handlers serve the blob methods.
type Handlers struct {
	Store    blobstore.Store
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
	Limiter *ratelimit.Limiter
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
