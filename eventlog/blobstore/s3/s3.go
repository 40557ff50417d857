package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog/blobstore"
)

const (
	// DefaultPartSize is the part size when Options.PartSize is 0: blobs
	// up to it are one PutObject, larger ones a multipart upload.
	DefaultPartSize = 16 << 20
	// MinPartSize is the smallest part S3 accepts (but for the last).
	MinPartSize = 5 << 20
	// maxParts is the most parts a multipart upload may have.
	maxParts = 10000
	// deleteConcurrency is how many DeleteObject requests DeleteAccount
	// keeps in flight.
	deleteConcurrency = 8
	// abortTimeout bounds aborting a failed multipart upload.
	abortTimeout = 30 * time.Second
	// DefaultKeyPrefix is where blobs live unless Options.KeyPrefix says
	// otherwise: blocks/<did>/<cid>, the reference PDS's layout.
	DefaultKeyPrefix = "blocks/"
)

// Options configure a Store. The comments name the reference PDS's
// environment variables they come from.
type Options struct {
	// Bucket is the bucket's name (PDS_BLOBSTORE_S3_BUCKET). Required.
	Bucket string
	// Region (PDS_BLOBSTORE_S3_REGION). "" means "auto" when Endpoint is
	// set (R2's region); without an Endpoint (AWS S3) it is required.
	Region string
	// Endpoint is the service's URL (PDS_BLOBSTORE_S3_ENDPOINT), e.g.
	// https://<account>.r2.cloudflarestorage.com; "" means AWS S3.
	Endpoint string
	// ForcePathStyle addresses the bucket in the path, not the host name
	// (PDS_BLOBSTORE_S3_FORCE_PATH_STYLE); MinIO and emulators need it.
	ForcePathStyle bool
	// AccessKeyID and SecretAccessKey are the static credentials
	// (PDS_BLOBSTORE_S3_ACCESS_KEY_ID, PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY).
	// Required.
	AccessKeyID     string
	SecretAccessKey string
	// UploadTimeout bounds a whole Put (PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS);
	// 0 means only the Put's context does.
	UploadTimeout time.Duration
	// PartSize is the size of multipart parts, and the largest blob sent as
	// one PutObject; 0 means DefaultPartSize, and it is at least
	// MinPartSize. A Put of a non-seekable reader buffers one part.
	PartSize int64
	// HTTPClient, if set, sends the requests (custom transports, tests);
	// nil means the SDK's default client.
	HTTPClient *http.Client
	// KeyPrefix is prepended to <did>/<cid> to name a blob's object; ""
	// means DefaultKeyPrefix. Non-empty, it must end in "/".
	KeyPrefix string
}

// Store is a blobstore.Store in an S3 bucket.
type Store struct {
	client        *awss3.Client
	bucket        string
	partSize      int64
	uploadTimeout time.Duration
	keyPrefix     string
}

var _ blobstore.Store = (*Store)(nil)

// New returns the store in the bucket opts name. It sends no request
// (Check does).
func New(opts Options) (*Store, error) {
	if opts.Bucket == "" {
		return nil, errors.New("blobstore/s3: no bucket")
	}
	if opts.AccessKeyID == "" || opts.SecretAccessKey == "" {
		return nil, errors.New("blobstore/s3: no access key ID and secret access key")
	}
	region := opts.Region
	if region == "" {
		if opts.Endpoint == "" {
			return nil, errors.New("blobstore/s3: no region (required without an endpoint)")
		}
		region = "auto"
	}
	partSize := opts.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize {
		return nil, fmt.Errorf("blobstore/s3: part size %d is below the %d bytes S3 requires", partSize, MinPartSize)
	}
	if opts.UploadTimeout < 0 {
		return nil, fmt.Errorf("blobstore/s3: negative upload timeout %v", opts.UploadTimeout)
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if !strings.HasSuffix(prefix, "/") || strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("blobstore/s3: key prefix %q must end in / and not start with one", prefix)
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
	return &Store{
		client:        awss3.New(o),
		bucket:        opts.Bucket,
		partSize:      partSize,
		uploadTimeout: opts.UploadTimeout,
		keyPrefix:     prefix,
	}, nil
}

// staticCredentials are the credentials of Options, and nothing else.
type staticCredentials struct{ id, secret string }

func (c staticCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret, Source: "blobstore/s3 options"}, nil
}

// Check asks the bucket whether it exists and the credentials may use it,
// so a misconfiguration shows at start rather than as missing blobs.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("blobstore/s3: bucket %s: %w", s.bucket, err)
	}
	return nil
}

func (s *Store) accountPrefix(did syntax.DID) string { return s.keyPrefix + string(did) + "/" }

func (s *Store) key(did syntax.DID, c cid.Cid) (string, error) {
	if err := blobstore.CheckKey(did, c); err != nil {
		return "", err
	}
	return s.accountPrefix(did) + c.String(), nil
}

// status returns the HTTP status of a failed request's response, or 0.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// notFound reports whether err says the object does not exist (a missing
// bucket is not that, where the response tells them apart).
func notFound(err error) bool {
	if status(err) != http.StatusNotFound {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
		return false
	}
	return true
}

// stat returns the size of the object key, or ErrNotFound.
func (s *Store) stat(ctx context.Context, key string) (int64, error) {
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if notFound(err) {
		return 0, blobstore.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Put implements blobstore.Store.
func (s *Store) Put(ctx context.Context, did syntax.DID, c cid.Cid, r io.Reader, size int64) error {
	key, err := s.key(did, c)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("blobstore/s3: put %s: negative size %d", c, size)
	}
	if s.uploadTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.uploadTimeout)
		defer cancel()
	}
	if err := s.put(ctx, key, r, size); err != nil {
		return fmt.Errorf("blobstore/s3: put %s: %w", c, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.stat(ctx, key); err == nil {
		return nil // already stored
	} else if !errors.Is(err, blobstore.ErrNotFound) {
		return err
	}
	partSize := s.partSize
	if (size+partSize-1)/partSize > maxParts {
		partSize = (size + maxParts - 1) / maxParts
	}
	src, err := newSource(ctx, r, size, partSize)
	if err != nil {
		return err
	}
	if size <= partSize {
		body, err := src.part(0, size)
		if err != nil {
			return err
		}
		_, err = s.client.PutObject(ctx, &awss3.PutObjectInput{
			Bucket:        &s.bucket,
			Key:           &key,
			Body:          body,
			ContentLength: aws.Int64(size),
		})
		return err
	}
	return s.multipart(ctx, key, src, size, partSize)
}

// multipart uploads src in parts, aborting the upload if anything fails so
// no parts are left behind (and billed).
func (s *Store) multipart(ctx context.Context, key string, src *source, size, partSize int64) (err error) {
	up, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: up.UploadId}); aerr != nil {
			err = fmt.Errorf("%w (and aborting the upload: %v)", err, aerr)
		}
	}()
	var parts []types.CompletedPart
	for num, off := int32(1), int64(0); off < size; num, off = num+1, off+partSize {
		n := min(partSize, size-off)
		body, err := src.part(off, n)
		if err != nil {
			return err
		}
		out, err := s.client.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket:        &s.bucket,
			Key:           &key,
			UploadId:      up.UploadId,
			PartNumber:    aws.Int32(num),
			Body:          body,
			ContentLength: aws.Int64(n),
		})
		if err != nil {
			return fmt.Errorf("part %d: %w", num, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket:          &s.bucket,
		Key:             &key,
		UploadId:        up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return err
}

// source hands out a Put's bytes as seekable part bodies, which the SDK
// needs to sign the payload and to retry: sections of the reader when it
// is an io.ReaderAt and io.Seeker, else one reused buffer, filled part by
// part.
type source struct {
	ra   io.ReaderAt
	base int64
	r    io.Reader
	buf  []byte
	size int64
}

func newSource(ctx context.Context, r io.Reader, size, partSize int64) (*source, error) {
	if ra, ok := r.(io.ReaderAt); ok {
		if sk, ok := r.(io.Seeker); ok {
			if base, err := sk.Seek(0, io.SeekCurrent); err == nil {
				src := &source{ra: ra, base: base, size: size}
				return src, src.checkLength()
			}
		}
	}
	return &source{r: blobstore.ContextReader(ctx, r), size: size, buf: make([]byte, min(size, partSize))}, nil
}

// checkLength checks that a ReaderAt source has exactly size bytes.
func (s *source) checkLength() error {
	var one [1]byte
	if s.size > 0 {
		if k, err := s.ra.ReadAt(one[:], s.base+s.size-1); k != 1 {
			if err == io.EOF {
				return fmt.Errorf("%w: fewer than %d bytes", blobstore.ErrSize, s.size)
			}
			return err
		}
	}
	k, err := s.ra.ReadAt(one[:], s.base+s.size)
	if k > 0 {
		return fmt.Errorf("%w: more than %d bytes", blobstore.ErrSize, s.size)
	}
	if err != nil && err != io.EOF {
		return err
	}
	return nil
}

// part returns the n bytes at off; parts are asked for in order.
func (s *source) part(off, n int64) (io.ReadSeeker, error) {
	if s.ra != nil {
		return io.NewSectionReader(s.ra, s.base+off, n), nil
	}
	b := s.buf[:n]
	if k, err := io.ReadFull(s.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: %d bytes, want %d", blobstore.ErrSize, off+int64(k), s.size)
		}
		return nil, err
	}
	if off+n == s.size { // the last part: nothing may follow
		var one [1]byte
		k, err := io.ReadFull(s.r, one[:])
		if k > 0 {
			return nil, fmt.Errorf("%w: more than %d bytes", blobstore.ErrSize, s.size)
		}
		if err != io.EOF {
			return nil, err
		}
	}
	return bytes.NewReader(b), nil
}

// Open implements blobstore.Store.
func (s *Store) Open(ctx context.Context, did syntax.DID, c cid.Cid, off, n int64) (io.ReadCloser, error) {
	key, err := s.key(did, c)
	if err != nil {
		return nil, err
	}
	rc, err := s.open(ctx, key, off, n)
	if err != nil {
		return nil, fmt.Errorf("blobstore/s3: open %s: %w", c, err)
	}
	return rc, nil
}

func (s *Store) open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("%w: offset %d", blobstore.ErrRange, off)
	}
	// Nothing to read, or a range S3 refuses (416: it starts at or past
	// the end): the size decides between an empty read and ErrRange.
	empty := func() (io.ReadCloser, error) {
		size, err := s.stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if _, err := blobstore.Span(off, 0, size); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if n == 0 {
		return empty()
	}
	in := &awss3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	if off > 0 || n > 0 {
		rng := "bytes=" + strconv.FormatInt(off, 10) + "-"
		if n > 0 {
			rng += strconv.FormatInt(off+n-1, 10)
		}
		in.Range = &rng
	}
	out, err := s.client.GetObject(ctx, in)
	if status(err) == http.StatusRequestedRangeNotSatisfiable {
		return empty()
	}
	if notFound(err) {
		return nil, blobstore.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	body := out.Body
	if in.Range != nil && out.ContentRange == nil {
		// The server ignored the range and sent the whole object.
		if k, err := io.CopyN(io.Discard, body, off); err != nil {
			body.Close()
			if err == io.EOF {
				return nil, fmt.Errorf("%w: offset %d of %d bytes", blobstore.ErrRange, off, k)
			}
			return nil, err
		}
		if n > 0 {
			body = readCloser{io.LimitReader(body, n), body}
		}
	}
	return &ctxBody{ctx: ctx, rc: body}, nil
}

// Stat implements blobstore.Store.
func (s *Store) Stat(ctx context.Context, did syntax.DID, c cid.Cid) (int64, error) {
	key, err := s.key(did, c)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("blobstore/s3: stat %s: %w", c, err)
	}
	size, err := s.stat(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("blobstore/s3: stat %s: %w", c, err)
	}
	return size, nil
}

// Delete implements blobstore.Store.
func (s *Store) Delete(ctx context.Context, did syntax.DID, c cid.Cid) error {
	key, err := s.key(did, c)
	if err != nil {
		return err
	}
	if err := s.delete(ctx, key); err != nil {
		return fmt.Errorf("blobstore/s3: delete %s: %w", c, err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if notFound(err) {
		return nil
	}
	return err
}

// List implements blobstore.Store.
func (s *Store) List(ctx context.Context, did syntax.DID, after cid.Cid, limit int) ([]cid.Cid, error) {
	if err := blobstore.CheckDID(did); err != nil {
		return nil, err
	}
	if err := blobstore.CheckList(limit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blobstore/s3: list: %w", err)
	}
	prefix := s.accountPrefix(did)
	in := &awss3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix}
	if after.Defined() {
		in.StartAfter = aws.String(prefix + after.String())
	}
	var out []cid.Cid
	for len(out) < limit {
		in.MaxKeys = aws.Int32(int32(min(limit-len(out), 1000)))
		page, err := s.client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("blobstore/s3: list: %w", err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			c, err := cid.Parse(name)
			if err != nil || c.String() != name {
				continue // not a blob of ours
			}
			if len(out) < limit {
				out = append(out, c)
			}
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
			break
		}
		in.ContinuationToken = page.NextContinuationToken
	}
	return out, nil
}

// DeleteAccount implements blobstore.Store. It deletes object by object
// (DeleteObject, several at once) rather than with DeleteObjects, whose
// required body checksum S3 clones disagree about; deleting an account is
// rare, and a refused batch would leave a deleted account's bytes behind.
func (s *Store) DeleteAccount(ctx context.Context, did syntax.DID) error {
	if err := blobstore.CheckDID(did); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blobstore/s3: delete account: %w", err)
	}
	prefix := s.accountPrefix(did)
	in := &awss3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix}
	for {
		page, err := s.client.ListObjectsV2(ctx, in)
		if err != nil {
			return fmt.Errorf("blobstore/s3: delete account: %w", err)
		}
		if err := s.deleteAll(ctx, page.Contents); err != nil {
			return fmt.Errorf("blobstore/s3: delete account: %w", err)
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = page.NextContinuationToken
	}
}

func (s *Store) deleteAll(ctx context.Context, objs []types.Object) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, deleteConcurrency)
	)
	for _, o := range objs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.delete(ctx, aws.ToString(o.Key)); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// ctxBody is an object body that stops once ctx is done (the transport
// may still have buffered bytes to give).
type ctxBody struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (b *ctxBody) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	return b.rc.Read(p)
}

func (b *ctxBody) Close() error { return b.rc.Close() }

type readCloser struct {
	io.Reader
	io.Closer
}
