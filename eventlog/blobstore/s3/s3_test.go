package s3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/ipfs/go-cid"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/eventlog/blobstore/blobstoretest"
	"github.com/pdslog/pdslog/eventlog/blobstore/s3"
)

const (
	bucket    = "blobs"
	keyID     = "PDSLOGTESTKEY"
	secretKey = "pdslog-test-secret"
)

// server is gofakes3 (an S3 implementation, in memory) on a real listener,
// with every request's headers checked and the requests counted.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	bad      []string       // requests that broke a rule
	requests map[string]int // "METHOD ?query-keys" -> count
	// stall, if set, makes the server hang on the requests it picks until
	// the client gives up (a stalled connection).
	stall func(*http.Request) bool
}

func startServer(t *testing.T, tls bool) *server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := &server{requests: map[string]int{}}
	fake := gofakes3.New(backend).Server()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.check(r)
		if srv.stall != nil && srv.stall(r) {
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			return
		}
		fake.ServeHTTP(w, r)
	})
	if tls {
		srv.Server = httptest.NewTLSServer(h)
	} else {
		srv.Server = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		srv.Close()
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, b := range srv.bad {
			t.Errorf("request: %s", b)
		}
	})
	return srv
}

// check records a request that carries a checksum the SDK should not send
// with checksums "when required", or was not signed with the options'
// credentials and region.
func (s *server) check(r *http.Request) {
	var bad []string
	for name, v := range r.Header {
		n := strings.ToLower(name)
		switch {
		case strings.HasPrefix(n, "x-amz-checksum-"), n == "x-amz-sdk-checksum-algorithm", n == "x-amz-trailer",
			n == "content-md5", n == "x-amz-decoded-content-length":
			bad = append(bad, name+": "+strings.Join(v, ","))
		case n == "content-encoding" && strings.Contains(strings.Join(v, ","), "aws-chunked"):
			bad = append(bad, name+": "+strings.Join(v, ","))
		case n == "x-amz-content-sha256" && strings.HasPrefix(v[0], "STREAMING-"):
			bad = append(bad, name+": "+v[0])
		}
	}
	auth := r.Header.Get("Authorization")
	if !strings.Contains(auth, "Credential="+keyID+"/") || !strings.Contains(auth, "/auto/s3/aws4_request") {
		bad = append(bad, "Authorization: "+auth)
	}
	var q []string
	for k := range r.URL.Query() {
		if k != "x-id" {
			q = append(q, k)
		}
	}
	slices.Sort(q)
	op := r.Method + " ?" + strings.Join(q, "&")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[op]++
	for _, b := range bad {
		s.bad = append(s.bad, op+" "+r.URL.Path+": "+b)
	}
}

func (s *server) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

func (s *server) store(t testing.TB, mod func(*s3.Options)) *s3.Store {
	t.Helper()
	o := s3.Options{
		Bucket:          bucket,
		Endpoint:        s.URL,
		ForcePathStyle:  true,
		AccessKeyID:     keyID,
		SecretAccessKey: secretKey,
		PartSize:        s3.MinPartSize,
		HTTPClient:      s.Client(),
	}
	if mod != nil {
		mod(&o)
	}
	st, err := s3.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sdk is a plain SDK client of the server, to look behind the store.
func (s *server) sdk() *awss3.Client {
	return awss3.New(awss3.Options{
		Region:       "auto",
		BaseEndpoint: aws.String(s.URL),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secretKey}, nil
		}),
		HTTPClient:                 s.Client(),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// pendingUploads returns the multipart uploads in progress.
func (s *server) pendingUploads(t *testing.T) int {
	t.Helper()
	out, err := s.sdk().ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
		return 0 // gofakes3's answer for a bucket that never had a multipart upload
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// TestConformance runs the suite over HTTPS (as against R2 or AWS), each
// subtest on a new server, with a 5 MiB part size so the suite's large
// blob is a three-part multipart upload. The server's checks fail the
// test on any checksum header, and no multipart upload may be left over.
func TestConformance(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) blobstore.Store {
		srv := startServer(t, true)
		t.Cleanup(func() {
			if n := srv.pendingUploads(t); n != 0 {
				t.Errorf("%d multipart uploads left", n)
			}
		})
		return srv.store(t, nil)
	})
}

// TestMultipart: a blob larger than a part is a multipart upload of
// PartSize parts; one of PartSize bytes is a single PutObject; a re-put
// is a HEAD only. Over HTTPS and plain HTTP, where the SDK must sign the
// payload itself (the server checks neither has a checksum header).
func TestMultipart(t *testing.T) {
	for _, tls := range []bool{true, false} {
		t.Run(map[bool]string{true: "https", false: "http"}[tls], func(t *testing.T) { testMultipart(t, tls) })
	}
}

func testMultipart(t *testing.T, tls bool) {
	srv := startServer(t, tls)
	st := srv.store(t, nil)
	ctx := t.Context()
	size := int64(2*s3.MinPartSize + 1)
	for _, seekable := range []bool{true, false} {
		var r io.Reader = blobstoretest.NewGen(1, size)
		if !seekable {
			r = blobstoretest.ReaderOnly(r)
		}
		c := blobstoretest.GenCID(1, size)
		if err := st.Delete(ctx, blobstoretest.Alice, c); err != nil {
			t.Fatal(err)
		}
		parts, puts := srv.count("PUT ?partNumber&uploadId"), srv.count("PUT ?")
		if err := st.Put(ctx, blobstoretest.Alice, c, r, size); err != nil {
			t.Fatal(err)
		}
		if got := srv.count("PUT ?partNumber&uploadId") - parts; got != 3 {
			t.Errorf("seekable=%v: %d parts uploaded, want 3", seekable, got)
		}
		if got := srv.count("PUT ?") - puts; got != 0 {
			t.Errorf("seekable=%v: %d PutObjects, want 0", seekable, got)
		}
		out, err := srv.sdk().GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("blocks/" + string(blobstoretest.Alice) + "/" + c.String())})
		if err != nil {
			t.Fatalf("object blocks/<did>/<cid>: %v", err)
		}
		h := sha256.New()
		n, err := io.Copy(h, out.Body)
		out.Body.Close()
		if err != nil || n != size || !bytes.Equal(h.Sum(nil), c.Hash()[2:]) {
			t.Fatalf("object blocks/<did>/<cid>: %d bytes, %v; want %d bytes hashing to its CID", n, err, size)
		}
	}
	one := blobstoretest.Bytes(2, s3.MinPartSize)
	puts, parts := srv.count("PUT ?"), srv.count("PUT ?partNumber&uploadId")
	if err := st.Put(ctx, blobstoretest.Alice, blobstoretest.CID(one), bytes.NewReader(one), int64(len(one))); err != nil {
		t.Fatal(err)
	}
	if srv.count("PUT ?")-puts != 1 || srv.count("PUT ?partNumber&uploadId") != parts {
		t.Errorf("a blob of one part size: %d PutObjects, %d parts; want 1, 0", srv.count("PUT ?")-puts, srv.count("PUT ?partNumber&uploadId")-parts)
	}
	heads, puts := srv.count("HEAD ?"), srv.count("PUT ?")
	if err := st.Put(ctx, blobstoretest.Alice, blobstoretest.CID(one), bytes.NewReader(one), int64(len(one))); err != nil {
		t.Fatal(err)
	}
	if srv.count("HEAD ?")-heads != 1 || srv.count("PUT ?") != puts {
		t.Errorf("re-put: %d HEADs, %d PUTs; want 1, 0", srv.count("HEAD ?")-heads, srv.count("PUT ?")-puts)
	}
}

// TestNoAmbientConfig: AWS_* environment variables and config files do
// not change where the store connects, with which key or region. (The
// server checks the credential and region of every request.)
func TestNoAmbientConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/config", []byte("[default]\nregion = eu-west-1\nendpoint_url = http://127.0.0.1:1\n"), 0o600)
	os.WriteFile(dir+"/credentials", []byte("[default]\naws_access_key_id = AMBIENT\naws_secret_access_key = ambient\n"), 0o600)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AMBIENT", "AWS_SECRET_ACCESS_KEY": "ambient", "AWS_SESSION_TOKEN": "ambient",
		"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
		"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1", "AWS_CONFIG_FILE": dir + "/config",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials", "AWS_REQUEST_CHECKSUM_CALCULATION": "when_supported",
		"AWS_RESPONSE_CHECKSUM_VALIDATION": "when_supported", "AWS_S3_USE_ARN_REGION": "true",
	} {
		t.Setenv(k, v)
	}
	srv := startServer(t, false)
	st := srv.store(t, nil) // Region "" with an Endpoint: "auto"
	data := []byte("configured explicitly")
	c := blobstoretest.CID(data)
	if err := st.Put(t.Context(), blobstoretest.Alice, c, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if srv.count("PUT ?") != 1 {
		t.Fatalf("the server saw %d PutObjects", srv.count("PUT ?"))
	}
}

func TestOptions(t *testing.T) {
	good := s3.Options{Bucket: "b", Endpoint: "http://127.0.0.1:1", AccessKeyID: "k", SecretAccessKey: "s"}
	if _, err := s3.New(good); err != nil {
		t.Fatalf("New(%+v): %v", good, err)
	}
	aws := good
	aws.Endpoint, aws.Region = "", "us-east-1"
	if _, err := s3.New(aws); err != nil {
		t.Fatalf("New for AWS S3: %v", err)
	}
	for name, mod := range map[string]func(*s3.Options){
		"no bucket":              func(o *s3.Options) { o.Bucket = "" },
		"no key":                 func(o *s3.Options) { o.AccessKeyID = "" },
		"no secret":              func(o *s3.Options) { o.SecretAccessKey = "" },
		"no region, no endpoint": func(o *s3.Options) { o.Endpoint = "" },
		"small parts":            func(o *s3.Options) { o.PartSize = s3.MinPartSize - 1 },
		"negative timeout":       func(o *s3.Options) { o.UploadTimeout = -time.Second },
		"prefix without /":       func(o *s3.Options) { o.KeyPrefix = "blobs" },
		"prefix starting with /": func(o *s3.Options) { o.KeyPrefix = "/blobs/" },
	} {
		o := good
		mod(&o)
		if _, err := s3.New(o); err == nil {
			t.Errorf("New with %s succeeded", name)
		}
	}
}

// TestKeyPrefix: with KeyPrefix a blob is the object PREFIX<did>/<cid>,
// and List and DeleteAccount see only that prefix's objects, not those of
// a store with the default prefix in the same bucket.
func TestKeyPrefix(t *testing.T) {
	srv := startServer(t, false)
	ctx := t.Context()
	def := srv.store(t, nil)
	mirror := srv.store(t, func(o *s3.Options) { o.KeyPrefix = "blobs/" })
	one, two := blobstoretest.Bytes(1, 100), blobstoretest.Bytes(2, 200)
	if err := def.Put(ctx, blobstoretest.Alice, blobstoretest.CID(one), bytes.NewReader(one), int64(len(one))); err != nil {
		t.Fatal(err)
	}
	if err := mirror.Put(ctx, blobstoretest.Alice, blobstoretest.CID(two), bytes.NewReader(two), int64(len(two))); err != nil {
		t.Fatal(err)
	}
	var keys []string
	out, err := srv.sdk().ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	want := []string{
		"blobs/" + string(blobstoretest.Alice) + "/" + blobstoretest.CID(two).String(),
		"blocks/" + string(blobstoretest.Alice) + "/" + blobstoretest.CID(one).String(),
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("objects %q, want %q", keys, want)
	}
	got, err := mirror.List(ctx, blobstoretest.Alice, cid.Undef, 10)
	if err != nil || len(got) != 1 || got[0] != blobstoretest.CID(two) {
		t.Fatalf("List under blobs/ = %v, %v; want only %s", got, err, blobstoretest.CID(two))
	}
	if err := mirror.DeleteAccount(ctx, blobstoretest.Alice); err != nil {
		t.Fatal(err)
	}
	if _, err := def.Stat(ctx, blobstoretest.Alice, blobstoretest.CID(one)); err != nil {
		t.Fatalf("DeleteAccount under blobs/ removed a blob under blocks/: %v", err)
	}
	if _, err := mirror.Stat(ctx, blobstoretest.Alice, blobstoretest.CID(two)); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after DeleteAccount: %v, want ErrNotFound", err)
	}
}

// TestCheck: Check fails for a bucket that does not exist.
func TestCheck(t *testing.T) {
	srv := startServer(t, false)
	if err := srv.store(t, nil).Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := srv.store(t, func(o *s3.Options) { o.Bucket = "missing" }).Check(t.Context()); err == nil {
		t.Fatal("Check of a missing bucket succeeded")
	}
}

// TestUploadTimeout: a Put that outlasts UploadTimeout fails with
// context.DeadlineExceeded and stores nothing. The server stalls on the
// second part, after the multipart upload was created: the store must
// abort the upload though its context has expired.
func TestUploadTimeout(t *testing.T) {
	srv := startServer(t, false)
	srv.stall = func(r *http.Request) bool { return r.URL.Query().Get("partNumber") == "2" }
	st := srv.store(t, func(o *s3.Options) { o.UploadTimeout = time.Second })
	size := int64(s3.MinPartSize + 10)
	c := blobstoretest.GenCID(1, size)
	err := st.Put(t.Context(), blobstoretest.Alice, c, blobstoretest.NewGen(1, size), size)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put past the upload timeout: %v", err)
	}
	if _, err := st.Stat(t.Context(), blobstoretest.Alice, c); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after a timed-out Put: %v", err)
	}
	if n := srv.pendingUploads(t); n != 0 {
		t.Fatalf("%d multipart uploads left", n)
	}
}

// TestMissingBucket: a missing bucket is an error, not a missing blob,
// where S3 says which (GET answers NoSuchBucket).
func TestMissingBucket(t *testing.T) {
	srv := startServer(t, false)
	st := srv.store(t, func(o *s3.Options) { o.Bucket = "missing" })
	_, err := st.Open(t.Context(), blobstoretest.Alice, blobstoretest.CID([]byte("x")), 0, -1)
	if err == nil || errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Open in a missing bucket: %v", err)
	}
}

// TestBoundedMemory streams a 64 MiB blob (32 MiB under the race
// detector, where the server process's page faults take seconds) through
// the store to a server in another process (this test binary, re-run), so
// that only the client's allocations count. What is measured is every
// byte allocated during the Put (an upper bound of the heap growth), which
// includes about 0.25 MiB of garbage per request from the SDK (its
// endpoint rules compile their partition regexps on every call): 16
// requests at 64 MiB. A seekable source is sent in sections of itself; a
// plain stream adds one part buffer (5 MiB here). Buffering the blob
// would allocate all of it.
func TestBoundedMemory(t *testing.T) {
	url := startChild(t)
	st, err := s3.New(s3.Options{Bucket: bucket, Endpoint: url, ForcePathStyle: true,
		AccessKeyID: keyID, SecretAccessKey: secretKey, PartSize: s3.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	blobstoretest.BoundedMemory(t, st, memSize, 5<<20, true)
	blobstoretest.BoundedMemory(t, st, memSize, s3.MinPartSize+5<<20, false)
}

const childEnv = "PDSLOG_BLOBSTORE_S3_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		serveChild()
		return
	}
	os.Exit(m.Run())
}

// serveChild serves gofakes3 in memory on a loopback port it prints,
// until its stdin closes.
func serveChild() {
	backend := s3mem.New()
	backend.CreateBucket(bucket)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(ln, gofakes3.New(backend).Server())
	fmt.Printf("http://%s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
}

func startChild(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("server process: %v", err)
	}
	url := strings.TrimSpace(line)
	if _, err := strconv.Atoi(url[strings.LastIndex(url, ":")+1:]); err != nil {
		t.Fatalf("server process said %q", line)
	}
	return url
}

func BenchmarkPut(b *testing.B) {
	for _, size := range []int64{1 << 20, 64 << 20} {
		b.Run(strconv.FormatInt(size>>20, 10)+"MiB", func(b *testing.B) {
			blobstoretest.BenchPut(b, benchStore(b), size)
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, size := range []int64{1 << 20, 64 << 20} {
		b.Run(strconv.FormatInt(size>>20, 10)+"MiB", func(b *testing.B) {
			blobstoretest.BenchOpen(b, benchStore(b), size)
		})
	}
}

// benchStore is a store on an in-process gofakes3 over HTTP with the
// default part size: what is measured includes the fake server's work.
func benchStore(b *testing.B) *s3.Store {
	backend := s3mem.New()
	backend.CreateBucket(bucket)
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	b.Cleanup(srv.Close)
	st, err := s3.New(s3.Options{Bucket: bucket, Endpoint: srv.URL, ForcePathStyle: true,
		AccessKeyID: keyID, SecretAccessKey: secretKey, HTTPClient: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	return st
}
