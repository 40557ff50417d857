package blob

import (
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/ratelimit"
)

// DefaultMaxSize is the upload limit when none is set: the reference
// installer's PDS_BLOB_UPLOAD_LIMIT.
const DefaultMaxSize = 104857600

// Handlers serve the blob methods.
type Handlers struct {
	PDS *pds.PDS
	// TempDir holds uploads while they stream in (PDS_BLOBSTORE_DISK_TMP_LOCATION).
	TempDir string
	// MaxSize is the largest upload accepted (PDS_BLOB_UPLOAD_LIMIT); 0 means DefaultMaxSize.
	MaxSize int64
	// Limiter, if set, limits uploads per client IP.
	Limiter *ratelimit.Limiter
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
