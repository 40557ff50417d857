package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pdslog/pdslog/api/blob"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/eventlog/blobstore/disk"
	"github.com/pdslog/pdslog/eventlog/blobstore/s3"
)

// blobStoreSettings say where blob bytes live, under the reference's env
// names: a directory, or an S3/R2 bucket. serve and mirror read the same
// settings (the mirror copies what serve stored).
type blobStoreSettings struct {
	diskDir string
	tmpDir  string
	s3      s3.Options
}

func (b *blobStoreSettings) register(f *flags) {
	f.String(&b.diskDir, "blobstore-disk-location", "", "directory of the local blob store (default: DATA_DIR/blobs)", "PDS_BLOBSTORE_DISK_LOCATION")
	f.String(&b.tmpDir, "blobstore-disk-tmp-location", "", "directory for uploads in flight (default: DATA_DIR/blobs/tmp)", "PDS_BLOBSTORE_DISK_TMP_LOCATION")
	f.String(&b.s3.Bucket, "blobstore-s3-bucket", "", "S3/R2 bucket for blobs; set to store blobs there instead of on disk", "PDS_BLOBSTORE_S3_BUCKET")
	f.String(&b.s3.Region, "blobstore-s3-region", "", "S3 region (default: auto when an endpoint is set, as R2 wants)", "PDS_BLOBSTORE_S3_REGION")
	f.String(&b.s3.Endpoint, "blobstore-s3-endpoint", "", "S3-compatible endpoint, e.g. https://ACCOUNT.r2.cloudflarestorage.com (default: AWS)", "PDS_BLOBSTORE_S3_ENDPOINT")
	f.Bool(&b.s3.ForcePathStyle, "blobstore-s3-force-path-style", false, "address the bucket in the URL path (MinIO, emulators)", "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE")
	f.String(&b.s3.AccessKeyID, "blobstore-s3-access-key-id", "", "S3 access key id", "PDS_BLOBSTORE_S3_ACCESS_KEY_ID")
	f.Secret(&b.s3.SecretAccessKey, "blobstore-s3-secret-access-key", "S3 secret access key", "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY")
	f.Duration(&b.s3.UploadTimeout, "blobstore-s3-upload-timeout", 10*time.Minute, "longest a blob upload to S3 may take", "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS")
}

// config validates the settings; an S3 store is built here, once.
func (b *blobStoreSettings) config() (blobStoreConfig, error) {
	cfg := blobStoreConfig{diskDir: b.diskDir, tmp: b.tmpDir}
	if b.s3.Bucket != "" {
		st, err := s3.New(b.s3)
		if err != nil {
			return cfg, usageError{fmt.Sprintf("PDS_BLOBSTORE_S3_*: %v", err)}
		}
		cfg.s3, cfg.bucket, cfg.endpoint = st, b.s3.Bucket, b.s3.Endpoint
	}
	return cfg, nil
}

// blobStoreConfig is a validated blob store location.
type blobStoreConfig struct {
	diskDir string
	tmp     string
	s3      *s3.Store
	bucket  string
	// endpoint is the S3 endpoint of bucket (recorded by the backup).
	endpoint string
}

// tmpDir is where uploads stream in: the setting, else DATA_DIR/tmp for S3
// and the store's tmp directory on disk.
func (b blobStoreConfig) tmpDir(dataDir string) string {
	switch {
	case b.tmp != "":
		return b.tmp
	case b.s3 != nil:
		return filepath.Join(dataDir, "tmp")
	}
	return filepath.Join(b.dir(dataDir), "tmp")
}

func (b blobStoreConfig) dir(dataDir string) string {
	if b.diskDir != "" {
		return b.diskDir
	}
	return filepath.Join(dataDir, pds.BlobsDir)
}

// open opens the store (checking an S3 bucket is reachable) and prepares
// the upload directory, removing uploads a crash left there.
func (b blobStoreConfig) open(ctx context.Context, dataDir string) (blobstore.Store, error) {
	tmp := b.tmpDir(dataDir)
	var st blobstore.Store
	if b.s3 != nil {
		if err := b.s3.Check(ctx); err != nil {
			return nil, fmt.Errorf("blob bucket %q: %w", b.bucket, err)
		}
		st = b.s3
	} else {
		d, err := disk.Open(b.dir(dataDir), &disk.Options{TempDir: tmp})
		if err != nil {
			return nil, fmt.Errorf("open blob store: %w", err)
		}
		st = d
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	if err := blob.CleanTemp(tmp); err != nil {
		return nil, fmt.Errorf("clean upload temp files: %w", err)
	}
	return st, nil
}

// blobSettings are serve's blob settings: the store, and how uploads and
// unreferenced blobs are handled.
type blobSettings struct {
	blobStoreSettings
	uploadLimit int64
	grace       time.Duration
	collectEach time.Duration
}

func (b *blobSettings) register(f *flags) {
	b.blobStoreSettings.register(f)
	f.Int64(&b.uploadLimit, "blob-upload-limit", blob.DefaultMaxSize, "largest blob upload accepted, in bytes", "PDS_BLOB_UPLOAD_LIMIT")
	f.Duration(&b.collectEach, "blob-collect-interval", pds.DefaultBlobCollectInterval, "how often unreferenced blobs past their grace are looked for", "PDSLOG_BLOB_COLLECT_INTERVAL")
	f.Duration(&b.grace, "blob-grace", pds.DefaultBlobGrace, "how long a blob no record references is kept before it is deleted", "PDSLOG_BLOB_GRACE")
}

// blobConfig is serve's validated blob settings.
type blobConfig struct {
	store       blobStoreConfig
	uploadLimit int64
	grace       time.Duration
	collectEach time.Duration
}

func (c blobConfig) tmpDir(dataDir string) string { return c.store.tmpDir(dataDir) }

func (b *blobSettings) config() (blobConfig, error) {
	if b.uploadLimit <= 0 {
		return blobConfig{}, usageError{fmt.Sprintf("PDS_BLOB_UPLOAD_LIMIT: must be positive, got %d", b.uploadLimit)}
	}
	if b.grace <= 0 {
		return blobConfig{}, usageError{fmt.Sprintf("PDSLOG_BLOB_GRACE: must be positive, got %s", b.grace)}
	}
	if b.collectEach <= 0 {
		return blobConfig{}, usageError{fmt.Sprintf("PDSLOG_BLOB_COLLECT_INTERVAL: must be positive, got %s", b.collectEach)}
	}
	st, err := b.blobStoreSettings.config()
	if err != nil {
		return blobConfig{}, err
	}
	return blobConfig{store: st, uploadLimit: b.uploadLimit, grace: b.grace, collectEach: b.collectEach}, nil
}
