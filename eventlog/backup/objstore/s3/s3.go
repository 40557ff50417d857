// Package s3 is the objstore.Store in an S3-compatible bucket (AWS S3,
// Cloudflare R2, MinIO) under a key prefix: one PutObject per object
// (backup objects are segments of a few MiB, manifests and key bundles),
// which S3 makes visible only complete. As in blobstore/s3, the client is
// built from Options alone (nothing read from AWS_* variables or ~/.aws),
// and request checksums are sent only when required, since R2 and other
// clones have refused the SDK's default aws-chunked bodies.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/pdslog/pdslog/eventlog/backup/objstore"
)

// Options configure a Store.
type Options struct {
	Bucket string // required
	// Prefix is prepended to every key; "" or ending in "/".
	Prefix string
	// Region; "" means "auto" when Endpoint is set (R2), else required.
	Region string
	// Endpoint of an S3-compatible service; "" means AWS S3.
	Endpoint string
	// ForcePathStyle puts the bucket in the URL path (MinIO, emulators).
	ForcePathStyle bool
	// Static credentials. Required.
	AccessKeyID, SecretAccessKey string
	// RequestTimeout bounds each request; 0 means only the context does.
	RequestTimeout time.Duration
	// HTTPClient, if set, sends the requests (tests); nil means the SDK's.
	HTTPClient *http.Client
}

// Store is an objstore.Store in an S3 bucket.
type Store struct {
	client  *awss3.Client
	bucket  string
	prefix  string
	timeout time.Duration
}

var _ objstore.Store = (*Store)(nil)

// New returns the store opts name. It sends no request.
func New(opts Options) (*Store, error) {
	if opts.Bucket == "" {
		return nil, errors.New("objstore/s3: no bucket")
	}
	if opts.AccessKeyID == "" || opts.SecretAccessKey == "" {
		return nil, errors.New("objstore/s3: no access key ID and secret access key")
	}
	if opts.Prefix != "" && (!strings.HasSuffix(opts.Prefix, "/") || strings.HasPrefix(opts.Prefix, "/")) {
		return nil, fmt.Errorf("objstore/s3: prefix %q must end in / and not start with one", opts.Prefix)
	}
	region := opts.Region
	if region == "" {
		if opts.Endpoint == "" {
			return nil, errors.New("objstore/s3: no region (required without an endpoint)")
		}
		region = "auto"
	}
	o := awss3.Options{
		Region:                     region,
		Credentials:                staticCredentials{opts.AccessKeyID, opts.SecretAccessKey},
		UsePathStyle:               opts.ForcePathStyle,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(opts.Endpoint)
	}
	if opts.HTTPClient != nil {
		o.HTTPClient = opts.HTTPClient
	}
	return &Store{client: awss3.New(o), bucket: opts.Bucket, prefix: opts.Prefix, timeout: opts.RequestTimeout}, nil
}

type staticCredentials struct{ id, secret string }

func (c staticCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret, Source: "objstore/s3 options"}, nil
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout > 0 {
		return context.WithTimeout(ctx, s.timeout)
	}
	return ctx, func() {}
}

func (s *Store) key(key string) (string, error) {
	if err := objstore.CheckKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

func notFound(err error) bool {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusNotFound {
		return false
	}
	var ae smithy.APIError
	return !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchBucket"
}

// Check asks whether the bucket exists and the credentials may use it.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("objstore/s3: bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Put implements objstore.Store.
func (s *Store) Put(ctx context.Context, key string, r io.ReadSeeker, size int64) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err = s.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &s.bucket, Key: &k, Body: r, ContentLength: aws.Int64(size)})
	if err != nil {
		return fmt.Errorf("objstore/s3: put %s: %w", key, err)
	}
	return nil
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.bucket, Key: &k})
	if notFound(err) {
		return nil, fmt.Errorf("%w: %s", objstore.ErrNotExist, key)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore/s3: get %s: %w", key, err)
	}
	return out.Body, nil
}

// GetRange implements objstore.Store.
func (s *Store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("objstore/s3: range %d+%d", off, n)
	}
	if n == 0 {
		return []byte{}, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	rng := "bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10)
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.bucket, Key: &k, Range: &rng})
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
		return []byte{}, nil
	}
	if notFound(err) {
		return nil, fmt.Errorf("%w: %s", objstore.ErrNotExist, key)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore/s3: get %s: %w", key, err)
	}
	defer out.Body.Close()
	body := io.Reader(out.Body)
	if out.ContentRange == nil && off > 0 { // the server sent the whole object
		if _, err := io.CopyN(io.Discard, body, off); err != nil {
			if err == io.EOF {
				return []byte{}, nil
			}
			return nil, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(body, n))
	if err != nil {
		return nil, fmt.Errorf("objstore/s3: get %s: %w", key, err)
	}
	return b, nil
}

// List implements objstore.Store.
func (s *Store) List(ctx context.Context, prefix, after string, fn func(objstore.Object) error) error {
	p := s.prefix + prefix
	in := &awss3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &p}
	if after != "" {
		in.StartAfter = aws.String(s.prefix + after)
	}
	for {
		page, err := func() (*awss3.ListObjectsV2Output, error) {
			ctx, cancel := s.ctx(ctx)
			defer cancel()
			return s.client.ListObjectsV2(ctx, in)
		}()
		if err != nil {
			return fmt.Errorf("objstore/s3: list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if key <= after {
				continue
			}
			if err := fn(objstore.Object{Key: key, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}); err != nil {
				if errors.Is(err, objstore.ErrStop) {
					return nil
				}
				return err
			}
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = page.NextContinuationToken
		in.StartAfter = nil
	}
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err = s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil && !notFound(err) {
		return fmt.Errorf("objstore/s3: delete %s: %w", key, err)
	}
	return nil
}
