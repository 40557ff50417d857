package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pdslog/pdslog/api/blob"
	"github.com/pdslog/pdslog/projections/blobstore"
	"github.com/pdslog/pdslog/projections/blobstore/disk"
)

// blobSettings are serve's blob storage settings, under the reference's
// env names where it has them.
type blobSettings struct {
	diskDir     string
	tmpDir      string
	uploadLimit int64
	grace       time.Duration
	collectEach time.Duration
}

func (b *blobSettings) register(f *flags) {
	f.String(&b.diskDir, "blobstore-disk-location", "", "directory of the local blob store (default: DATA_DIR/blobs)", "PDS_BLOBSTORE_DISK_LOCATION")
	f.String(&b.tmpDir, "blobstore-disk-tmp-location", "", "directory for uploads in flight (default: DATA_DIR/blobs/tmp)", "PDS_BLOBSTORE_DISK_TMP_LOCATION")
	f.Int64(&b.uploadLimit, "blob-upload-limit", blob.DefaultMaxSize, "largest blob upload accepted, in bytes", "PDS_BLOB_UPLOAD_LIMIT")
	f.Duration(&b.collectEach, "blob-collect-interval", blob.DefaultCollectInterval, "how often unreferenced blobs past their grace are looked for", "PDSLOG_BLOB_COLLECT_INTERVAL")
	f.Duration(&b.grace, "blob-grace", blob.DefaultGrace, "how long a blob no record references is kept before it is deleted", "PDSLOG_BLOB_GRACE")
}

func (b *blobSettings) validate() error {
	if b.uploadLimit <= 0 {
		return usageError{fmt.Sprintf("PDS_BLOB_UPLOAD_LIMIT: must be positive, got %d", b.uploadLimit)}
	}
	if b.grace <= 0 {
		return usageError{fmt.Sprintf("PDSLOG_BLOB_GRACE: must be positive, got %s", b.grace)}
	}
	if b.collectEach <= 0 {
		return usageError{fmt.Sprintf("PDSLOG_BLOB_COLLECT_INTERVAL: must be positive, got %s", b.collectEach)}
	}
	return nil
}

// open opens the blob store and returns it with the directory uploads
// stream into, after removing uploads a crash left there.
func (b *blobSettings) open(dataDir string) (blobstore.Store, string, error) {
	dir := b.diskDir
	if dir == "" {
		dir = filepath.Join(dataDir, "blobs")
	}
	tmp := b.tmpDir
	if tmp == "" {
		tmp = filepath.Join(dir, "tmp")
	}
	st, err := disk.Open(dir, &disk.Options{TempDir: tmp})
	if err != nil {
		return nil, "", fmt.Errorf("open blob store: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, "", err
	}
	if err := blob.CleanTemp(tmp); err != nil {
		return nil, "", fmt.Errorf("clean upload temp files: %w", err)
	}
	return st, tmp, nil
}
