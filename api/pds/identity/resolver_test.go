package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
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
