package objstoretest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Credentials FakeS3 is used with (gofakes3 checks signatures' shape, not
// their keys).
const (
	FakeBucket = "backups"
	FakeKeyID  = "PDSLOGBACKUPKEY"
	FakeSecret = "pdslog-backup-secret"
)

// FakeS3 is gofakes3 over a real HTTP listener on loopback, holding one
// bucket (FakeBucket) in memory. Its switches inject the faults a real
// service has: Down answers 503 to everything, Hold stalls chosen requests
// until released. It records the key of every PutObject it completed.
type FakeS3 struct {
	*httptest.Server
	mu      sync.Mutex
	down    bool
	hold    func(*http.Request) bool
	held    chan struct{} // receives one value per request being held
	release chan struct{} // closed to let held requests go
	puts    []string
	counts  map[string]int
}

// StartFakeS3 starts a server the test stops when it ends.
func StartFakeS3(t testing.TB) *FakeS3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(FakeBucket); err != nil {
		t.Fatal(err)
	}
	f := &FakeS3{held: make(chan struct{}, 1024), release: make(chan struct{}), counts: map[string]int{}}
	fake := gofakes3.New(backend).Server()
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		down, hold, release := f.down, f.hold, f.release
		f.counts[r.Method]++
		f.mu.Unlock()
		if down {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>down for the test</Message></Error>`)
			return
		}
		if hold != nil && hold(r) {
			io.Copy(io.Discard, r.Body)
			f.held <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		fake.ServeHTTP(rec, r)
		if r.Method == http.MethodPut && rec.status == 200 && r.URL.Query().Get("uploadId") == "" {
			f.mu.Lock()
			f.puts = append(f.puts, strings.TrimPrefix(r.URL.Path, "/"+FakeBucket+"/"))
			f.mu.Unlock()
		}
	}))
	t.Cleanup(f.Close)
	return f
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// SetDown takes the service down (every request answered 503) or up.
func (f *FakeS3) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// Hold makes the server stall every request match picks (nil: none) until
// Release; Held receives once per request stalled.
func (f *FakeS3) Hold(match func(*http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = match
}

// Held receives one value for each request the server started holding.
func (f *FakeS3) Held() <-chan struct{} { return f.held }

// Release lets every held request go (answered 503) and stops holding.
func (f *FakeS3) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = nil
	close(f.release)
	f.release = make(chan struct{})
}

// Puts returns the keys (bucket-relative) of the PutObjects completed so far.
func (f *FakeS3) Puts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.puts...)
}

// Requests returns how many requests of method the server got.
func (f *FakeS3) Requests(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[method]
}
