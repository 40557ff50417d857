package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pdslog/pdslog/api/blob"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/eventlog/blobstore/disk"
	"github.com/pdslog/pdslog/eventlog/blobstore/s3"
)

// blobSettings are serve's blob storage settings, under the reference's
// env names where it has them.
type blobSettings struct {
	diskDir     string
	tmpDir      string
	uploadLimit int64
	grace       time.Duration
	collectEach time.Duration
	s3          s3.Options
}

func (b *blobSettings) register(f *flags) {
	f.String(&b.diskDir, "blobstore-disk-location", "", "directory of the local blob store (default: DATA_DIR/blobs)", "PDS_BLOBSTORE_DISK_LOCATION")
	f.String(&b.tmpDir, "blobstore-disk-tmp-location", "", "directory for uploads in flight (default: DATA_DIR/blobs/tmp)", "PDS_BLOBSTORE_DISK_TMP_LOCATION")
	f.String(&b.s3.Bucket, "blobstore-s3-bucket", "", "S3/R2 bucket for blobs; set to store blobs there instead of on disk", "PDS_BLOBSTORE_S3_BUCKET")
	f.String(&b.s3.Region, "blobstore-s3-region", "", "S3 region (default: auto when an endpoint is set, as R2 wants)", "PDS_BLOBSTORE_S3_REGION")
	f.String(&b.s3.Endpoint, "blobstore-s3-endpoint", "", "S3-compatible endpoint, e.g. https://ACCOUNT.r2.cloudflarestorage.com (default: AWS)", "PDS_BLOBSTORE_S3_ENDPOINT")
	f.Bool(&b.s3.ForcePathStyle, "blobstore-s3-force-path-style", false, "address the bucket in the URL path (MinIO, emulators)", "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE")
	f.String(&b.s3.AccessKeyID, "blobstore-s3-access-key-id", "", "S3 access key id", "PDS_BLOBSTORE_S3_ACCESS_KEY_ID")
	f.Secret(&b.s3.SecretAccessKey, "blobstore-s3-secret-access-key", "S3 secret access key", "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY")
	f.Duration(&b.s3.UploadTimeout, "blobstore-s3-upload-timeout", 10*time.Minute, "longest a blob upload to S3 may take", "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS")
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
	if b.s3.Bucket != "" {
		if _, err := s3.New(b.s3); err != nil {
			return usageError{fmt.Sprintf("PDS_BLOBSTORE_S3_*: %v", err)}
		}
	}
	if b.collectEach <= 0 {
		return usageError{fmt.Sprintf("PDSLOG_BLOB_COLLECT_INTERVAL: must be positive, got %s", b.collectEach)}
	}
	return nil
}

// open opens the blob store and returns it with the directory uploads
// stream into, after removing uploads a crash left there.
func (b *blobSettings) open(ctx context.Context, dataDir string) (blobstore.Store, string, error) {
	if b.s3.Bucket != "" {
		st, err := s3.New(b.s3)
		if err != nil {
			return nil, "", err
		}
		if err := st.Check(ctx); err != nil {
			return nil, "", fmt.Errorf("blob bucket %q: %w", b.s3.Bucket, err)
		}
		tmp := b.tmpDir
		if tmp == "" {
			tmp = filepath.Join(dataDir, "tmp")
		}
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			return nil, "", err
		}
		return st, tmp, blob.CleanTemp(tmp)
	}
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
