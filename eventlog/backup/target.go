package backup

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/pdslog/pdslog/eventlog/backup/objstore"
	"github.com/pdslog/pdslog/eventlog/backup/objstore/dir"
	objs3 "github.com/pdslog/pdslog/eventlog/backup/objstore/s3"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/eventlog/blobstore/disk"
	blobs3 "github.com/pdslog/pdslog/eventlog/blobstore/s3"
)

// S3Config is how to reach an S3-compatible service (AWS S3, R2, MinIO).
type S3Config struct {
	Endpoint        string // "" means AWS S3
	Region          string // "" means "auto" with an Endpoint
	AccessKeyID     string
	SecretAccessKey string
	ForcePathStyle  bool
	RequestTimeout  time.Duration
	HTTPClient      *http.Client // tests
}

// Target is an opened backup location: its objects, and the store the
// blob bytes go to (blobs/ under the same prefix).
type Target struct {
	URL     string
	Objects objstore.Store
	Blobs   blobstore.Store
}

// ParseURL splits s3://BUCKET/PREFIX (the prefix may be empty) or
// file:///PATH.
func ParseURL(raw string) (scheme, bucket, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", "", "", fmt.Errorf("%w: %q: no query, fragment or user info", ErrBadURL, raw)
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return "", "", "", fmt.Errorf("%w: %q: want s3://BUCKET/PREFIX", ErrBadURL, raw)
		}
		p := strings.Trim(u.Path, "/")
		if p != "" {
			if err := objstore.CheckKey(p); err != nil {
				return "", "", "", fmt.Errorf("%w: %q: prefix %q", ErrBadURL, raw, p)
			}
			p += "/"
		}
		return "s3", u.Host, p, nil
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return "", "", "", fmt.Errorf("%w: %q: want file:///ABSOLUTE/PATH", ErrBadURL, raw)
		}
		return "file", "", filepath.Clean(u.Path), nil
	}
	return "", "", "", fmt.Errorf("%w: %q: want s3://BUCKET/PREFIX or file:///PATH", ErrBadURL, raw)
}

// OpenTarget opens the backup at raw. It sends no request.
func OpenTarget(raw string, cfg S3Config) (*Target, error) {
	scheme, bucket, prefix, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	t := &Target{URL: raw}
	if scheme == "file" {
		if t.Objects, err = dir.New(prefix); err != nil {
			return nil, err
		}
		if t.Blobs, err = disk.Open(filepath.Join(prefix, "blobs"), nil); err != nil {
			return nil, err
		}
		return t, nil
	}
	if t.Objects, err = objs3.New(objs3.Options{Bucket: bucket, Prefix: prefix, Region: cfg.Region, Endpoint: cfg.Endpoint,
		ForcePathStyle: cfg.ForcePathStyle, AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey,
		RequestTimeout: cfg.RequestTimeout, HTTPClient: cfg.HTTPClient}); err != nil {
		return nil, err
	}
	if t.Blobs, err = blobs3.New(blobs3.Options{Bucket: bucket, KeyPrefix: prefix + blobsDir, Region: cfg.Region, Endpoint: cfg.Endpoint,
		ForcePathStyle: cfg.ForcePathStyle, AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey,
		HTTPClient: cfg.HTTPClient}); err != nil {
		return nil, err
	}
	return t, nil
}
