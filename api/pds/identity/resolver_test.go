package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	pdsidentity "github.com/pdslog/pdslog/api/pds/identity"
)

// didWebHost serves a did:web document for localhost:PORT, counting
// fetches; each fetch is announced on fetched.
type didWebHost struct {
	srv     *httptest.Server
	did     syntax.DID
	mu      sync.Mutex
	doc     *identity.DIDDocument // nil: 404
	gate    chan struct{}         // if set, fetches wait for it
	fetches atomic.Int32
	fetched chan struct{}
}

func newDIDWebHost(t *testing.T) *didWebHost {
	h := &didWebHost{fetched: make(chan struct{}, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		doc, gate := h.doc, h.gate
		h.mu.Unlock()
		if gate != nil {
			<-gate
		}
		h.fetches.Add(1)
		defer func() { h.fetched <- struct{}{} }()
		if r.URL.Path != "/.well-known/did.json" || doc == nil {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(h.srv.Close)
	u, _ := url.Parse(h.srv.URL)
	h.did = syntax.DID("did:web:localhost%3A" + u.Port())
	h.set("https://one.example")
	return h
}

func (h *didWebHost) set(endpoint string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if endpoint == "" {
		h.doc = nil
		return
	}
	h.doc = &identity.DIDDocument{DID: h.did, Service: []identity.DocService{{ID: "#svc", Type: "X", ServiceEndpoint: endpoint}}}
}

func endpointOf(t *testing.T, doc *identity.DIDDocument) string {
	t.Helper()
	u, ok := pdsidentity.ServiceEndpoint(doc, "svc")
	if !ok {
		t.Fatalf("no #svc in %+v", doc)
	}
	return u.String()
}

// TestResolverCache: the reference's DID cache lifetimes. A document is
// served from the cache for an hour; then served stale while a background
// fetch refreshes it; after a day it is fetched before use; a document
// found gone leaves the cache; concurrent misses share one fetch.
func TestResolverCache(t *testing.T) {
	ctx := context.Background()
	h := newDIDWebHost(t)
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	advance := func(d time.Duration) { now.Add(int64(d)) }
	r := &pdsidentity.Resolver{Now: func() time.Time { return time.Unix(0, now.Load()) }}
	resolve := func() (*identity.DIDDocument, error) { return r.Resolve(ctx, h.did) }
	waitFetch := func() {
		t.Helper()
		select {
		case <-h.fetched:
		case <-time.After(30 * time.Second):
			t.Fatal("no fetch")
		}
	}

	doc, err := resolve()
	waitFetch()
	if err != nil || endpointOf(t, doc) != "https://one.example" || h.fetches.Load() != 1 {
		t.Fatalf("first resolve: %v, %d fetches", err, h.fetches.Load())
	}
	h.set("https://two.example")
	advance(59 * time.Minute)
	if doc, _ := resolve(); endpointOf(t, doc) != "https://one.example" || h.fetches.Load() != 1 {
		t.Fatalf("fresh entry refetched (%d fetches)", h.fetches.Load())
	}
	advance(2 * time.Minute) // stale: the old one now, a refresh behind it
	if doc, _ := resolve(); endpointOf(t, doc) != "https://one.example" {
		t.Fatal("stale entry not served while refreshing")
	}
	waitFetch()
	for i := 0; ; i++ { // the refresh lands in the cache right after the fetch
		if doc, _ := resolve(); endpointOf(t, doc) == "https://two.example" {
			break
		}
		if i > 1000 {
			t.Fatal("refreshed document never served")
		}
		time.Sleep(time.Millisecond)
	}
	h.set("https://three.example")
	advance(25 * time.Hour) // expired: fetched before use
	if doc, _ := resolve(); endpointOf(t, doc) != "https://three.example" {
		t.Fatal("expired entry served")
	}
	waitFetch()
	h.set("")
	advance(25 * time.Hour)
	if _, err := resolve(); !errors.Is(err, pdsidentity.ErrDIDNotFound) {
		t.Fatalf("gone document: %v", err)
	}
	waitFetch()

	// Concurrent misses share one fetch.
	h.set("https://four.example")
	gate := make(chan struct{})
	h.mu.Lock()
	h.gate = gate
	h.mu.Unlock()
	before := h.fetches.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			doc, err := resolve()
			if err == nil && endpointOf(t, doc) != "https://four.example" {
				err = errors.New("wrong document")
			}
			errs <- err
		})
	}
	time.Sleep(50 * time.Millisecond) // let them pile up on the one fetch (not a timing assertion)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := h.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches for concurrent misses, want 1", n)
	}

	// Unsupported DIDs are refused without a fetch.
	for _, d := range []syntax.DID{"did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", "did:web:example.com:path"} {
		if _, err := r.Resolve(ctx, d); !errors.Is(err, pdsidentity.ErrUnsupportedDID) {
			t.Errorf("%s: %v", d, err)
		}
	}
}

// The mock answers what it was given, and ErrDIDNotFound otherwise.
func TestMockDirectory(t *testing.T) {
	var m pdsidentity.MockDirectory
	did := syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	if _, err := m.Resolve(context.Background(), did); !errors.Is(err, pdsidentity.ErrDIDNotFound) {
		t.Fatalf("empty mock: %v", err)
	}
	m.Put(did, &identity.DIDDocument{DID: did})
	if doc, err := m.Resolve(context.Background(), did); err != nil || doc.DID != did {
		t.Fatalf("resolve: %v %v", doc, err)
	}
}

// webFarm serves did:web documents for any host, over TLS, through one
// test server: Client dials it whatever the name (the resolver speaks
// https to every host but localhost).
type webFarm struct {
	srv     *httptest.Server
	mu      sync.Mutex
	docs    map[string][]byte // host -> body
	fetches map[string]int
}

func newWebFarm(t *testing.T) *webFarm {
	f := &webFarm{docs: map[string][]byte{}, fetches: map[string]int{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		body, ok := f.docs[r.Host]
		f.fetches[r.Host]++
		f.mu.Unlock()
		if !ok || r.URL.Path != "/.well-known/did.json" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *webFarm) client() *http.Client {
	tr := f.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.InsecureSkipVerify = true
	tr.DisableKeepAlives = true // idle connections to 400 hosts would weigh on the heap measured
	addr := f.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

// put serves host's document: a usable one (a service with an https
// endpoint) unless usable is false, padded with alsoKnownAs entries to
// about size bytes.
func (f *webFarm) put(t *testing.T, host string, size int, usable bool) syntax.DID {
	t.Helper()
	did := syntax.DID("did:web:" + host)
	doc := identity.DIDDocument{DID: did}
	if usable {
		doc.Service = []identity.DocService{{ID: "#svc", Type: "X", ServiceEndpoint: "https://svc.example"}}
	} else {
		doc.Service = []identity.DocService{{ID: "#svc", Type: "X", ServiceEndpoint: "not a url"}}
	}
	for n := 0; n < size; n += 1000 {
		doc.AlsoKnownAs = append(doc.AlsoKnownAs, "at://"+strings.Repeat("a", 990)+".example")
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.docs[host] = b
	f.mu.Unlock()
	return did
}

func (f *webFarm) fetchesOf(host string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches[host]
}

func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestResolverCacheBounded: the DID document cache is no memory sink. A
// document well below 1 MiB is refused (and not cached); the cache holds
// documents up to a byte budget, not a count, however many distinct DIDs
// are resolved; a document no one can use (no service with an http(s)
// endpoint) is not cached.
func TestResolverCacheBounded(t *testing.T) {
	ctx := context.Background()
	f := newWebFarm(t)
	r := &pdsidentity.Resolver{Web: f.client()}

	big := f.put(t, "big.example", 800<<10, true)
	if _, err := r.Resolve(ctx, big); err == nil {
		t.Fatal("an 800 KB DID document was accepted")
	}
	if _, err := r.Resolve(ctx, big); err == nil || f.fetchesOf("big.example") != 2 {
		t.Fatalf("an oversized document was cached: %v, %d fetches", err, f.fetchesOf("big.example"))
	}

	useless := f.put(t, "useless.example", 100, false)
	for range 2 {
		if _, err := r.Resolve(ctx, useless); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.fetchesOf("useless.example"); n != 2 {
		t.Fatalf("a document without a usable service was cached (%d fetches for 2 resolutions)", n)
	}

	const n, size = 400, 48 << 10
	dids := make([]syntax.DID, n)
	for i := range dids {
		dids[i] = f.put(t, fmt.Sprintf("h%d.example", i), size, true)
	}
	before := liveHeap()
	for _, did := range dids {
		doc, err := r.Resolve(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		endpointOf(t, doc)
	}
	grew := liveHeap() - before
	runtime.KeepAlive(r)
	t.Logf("%d documents of %d KiB resolved: the cache grew the heap by %d KiB", n, size>>10, grew>>10)
	if grew > 12<<20 {
		t.Fatalf("%d documents of %d KiB grew the heap by %d MiB: the cache is not bounded in bytes", n, size>>10, grew>>20)
	}
	if st := r.CacheStats(); st.Bytes > pdsidentity.DefaultDIDCacheBytes || st.Entries >= n {
		t.Fatalf("cache %+v over its bound of %d bytes", st, pdsidentity.DefaultDIDCacheBytes)
	}
	// The newest are cached, the oldest were evicted.
	last := fmt.Sprintf("h%d.example", n-1)
	if _, err := r.Resolve(ctx, dids[n-1]); err != nil || f.fetchesOf(last) != 1 {
		t.Fatalf("newest document refetched: %v, %d fetches", err, f.fetchesOf(last))
	}
	if _, err := r.Resolve(ctx, dids[0]); err != nil || f.fetchesOf("h0.example") != 2 {
		t.Fatalf("oldest document still cached: %v, %d fetches", err, f.fetchesOf("h0.example"))
	}
}
