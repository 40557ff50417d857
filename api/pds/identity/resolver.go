package identity

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/identity/plc"
)

// DID document cache lifetimes and resolution limits: the reference PDS's
// defaults (PDS_DID_CACHE_STALE_TTL, PDS_DID_CACHE_MAX_TTL,
// PDS_ID_RESOLVER_TIMEOUT).
const (
	DefaultDIDCacheStaleTTL = time.Hour
	DefaultDIDCacheMaxTTL   = 24 * time.Hour
	DefaultResolveTimeout   = 3 * time.Second
	// DefaultDIDCacheEntries and DefaultDIDCacheBytes bound the cache (the
	// reference's SQLite cache is unbounded; ours lives in memory): the
	// oldest entries go first when either is reached.
	DefaultDIDCacheEntries = 20_000
	DefaultDIDCacheBytes   = 8 << 20
	// MaxDIDDocument is the largest DID document accepted, did:web or
	// did:plc. Real ones are a few KB (the PLC directory caps operations
	// far lower); a bigger one is refused, not cached.
	MaxDIDDocument = 64 << 10
	// entryOverhead is what a cache entry costs beyond its document's
	// JSON size (map slot, list element, entry, struct headers).
	entryOverhead = 512
)

var (
	// ErrDIDNotFound: the directory or host positively has no document
	// for the DID.
	ErrDIDNotFound = errors.New("identity: DID not found")
	// ErrUnsupportedDID: a DID method other than plc and web, or a did:web
	// with a path.
	ErrUnsupportedDID = errors.New("identity: unsupported DID")
)

// Resolver resolves DID documents, did:plc through a PLC directory and
// did:web over HTTPS (HTTP for localhost), and caches them as the
// reference PDS's DID cache does: an entry is fresh for StaleTTL; after
// that it is still served, while a background resolution refreshes it,
// until MaxTTL, when it must be resolved again before use. A document
// found gone on refresh leaves the cache; a failed refresh keeps the old
// one. Concurrent resolutions of one DID share one request.
//
// The cache is bounded in bytes (MaxBytes, each entry counted as its
// document's JSON size plus overhead) and entries (MaxEntries), evicting
// the least recently resolved; a document over MaxDIDDocument is refused,
// and one with no usable service (an http(s) endpoint, what callers look
// documents up for) is returned but not cached.
//
// The zero value is not usable: set PLC (and Web for did:web).
type Resolver struct {
	PLC *plc.Client
	// Web fetches did:web documents; it should carry the SSRF guard.
	Web        *http.Client
	StaleTTL   time.Duration // 0 means DefaultDIDCacheStaleTTL
	MaxTTL     time.Duration // 0 means DefaultDIDCacheMaxTTL
	Timeout    time.Duration // per resolution; 0 means DefaultResolveTimeout
	MaxEntries int           // 0 means DefaultDIDCacheEntries
	MaxBytes   int64         // 0 means DefaultDIDCacheBytes
	Now        func() time.Time
	Logger     *slog.Logger

	mu       sync.Mutex
	cache    map[syntax.DID]*list.Element // of *cacheEntry
	order    *list.List                   // least recently stored first
	bytes    int64                        // sum of the entries' sizes
	inflight map[syntax.DID]*resolveCall
}

type cacheEntry struct {
	did       syntax.DID
	doc       *identity.DIDDocument
	size      int64
	updatedAt time.Time
}

type resolveCall struct {
	done chan struct{}
	doc  *identity.DIDDocument
	err  error
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func orDefault[T ~int | ~int64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Resolve returns did's DID document. Errors wrap ErrDIDNotFound when the
// DID positively has no document, ErrUnsupportedDID for DIDs it cannot
// resolve at all; any other error is a failure to ask.
func (r *Resolver) Resolve(ctx context.Context, did syntax.DID) (*identity.DIDDocument, error) {
	if m := did.Method(); m != "plc" && m != "web" {
		return nil, fmt.Errorf("%w: method %q", ErrUnsupportedDID, m)
	}
	now := r.now()
	r.mu.Lock()
	var e cacheEntry
	el, ok := r.cache[did]
	if ok {
		e = *el.Value.(*cacheEntry)
	}
	r.mu.Unlock()
	if ok {
		age := now.Sub(e.updatedAt)
		if age <= orDefault(r.MaxTTL, DefaultDIDCacheMaxTTL) {
			if age > orDefault(r.StaleTTL, DefaultDIDCacheStaleTTL) {
				go func() { _, _ = r.shared(context.Background(), did, true) }()
			}
			return e.doc, nil
		}
	}
	return r.shared(ctx, did, false)
}

// Purge drops did's cached document, if any.
func (r *Resolver) Purge(did syntax.DID) {
	r.mu.Lock()
	r.drop(did)
	r.mu.Unlock()
}

// CacheStats is the cache's size.
type CacheStats struct {
	Entries int
	Bytes   int64
}

// CacheStats reports how much the cache holds.
func (r *Resolver) CacheStats() CacheStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return CacheStats{Entries: len(r.cache), Bytes: r.bytes}
}

// drop removes did's entry; r.mu is held.
func (r *Resolver) drop(did syntax.DID) {
	if el, ok := r.cache[did]; ok {
		r.bytes -= el.Value.(*cacheEntry).size
		r.order.Remove(el)
		delete(r.cache, did)
	}
}

// store caches doc as did's, if it is usable, then evicts the oldest
// entries until the cache fits its bounds; r.mu is held.
func (r *Resolver) store(did syntax.DID, doc *identity.DIDDocument, size int64) {
	r.drop(did)
	if !usable(doc) {
		return
	}
	if r.cache == nil {
		r.cache = map[syntax.DID]*list.Element{}
		r.order = list.New()
	}
	size += entryOverhead
	r.cache[did] = r.order.PushBack(&cacheEntry{did: did, doc: doc, size: size, updatedAt: r.now()})
	r.bytes += size
	maxEntries, maxBytes := orDefault(r.MaxEntries, DefaultDIDCacheEntries), orDefault(r.MaxBytes, DefaultDIDCacheBytes)
	for len(r.cache) > maxEntries || r.bytes > maxBytes {
		r.drop(r.order.Front().Value.(*cacheEntry).did)
	}
}

// usable reports whether doc is worth caching: callers resolve DIDs for
// their services, so one with no service with an http(s) endpoint is not.
func usable(doc *identity.DIDDocument) bool {
	for _, s := range doc.Service {
		if u, err := url.Parse(s.ServiceEndpoint); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return true
		}
	}
	return false
}

// shared resolves did once for every concurrent caller and updates the
// cache. The resolution runs to its own timeout even if ctx ends first.
func (r *Resolver) shared(ctx context.Context, did syntax.DID, background bool) (*identity.DIDDocument, error) {
	r.mu.Lock()
	if c := r.inflight[did]; c != nil {
		r.mu.Unlock()
		if background {
			return nil, nil
		}
		select {
		case <-c.done:
			return c.doc, c.err
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	c := &resolveCall{done: make(chan struct{})}
	if r.inflight == nil {
		r.inflight = map[syntax.DID]*resolveCall{}
	}
	r.inflight[did] = c
	r.mu.Unlock()

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(r.Timeout, DefaultResolveTimeout))
	var size int64
	c.doc, size, c.err = r.fetch(rctx, did)
	cancel()

	r.mu.Lock()
	delete(r.inflight, did)
	switch {
	case c.err == nil:
		r.store(did, c.doc, size)
	case errors.Is(c.err, ErrDIDNotFound):
		r.drop(did)
	}
	r.mu.Unlock()
	close(c.done)
	if c.err != nil && background && r.Logger != nil {
		r.Logger.Warn("refreshing a cached DID document failed", "did", did, "err", c.err)
	}
	return c.doc, c.err
}

// fetch resolves did without the cache, and returns the document's size
// (its JSON's). A document over MaxDIDDocument is an error.
func (r *Resolver) fetch(ctx context.Context, did syntax.DID) (*identity.DIDDocument, int64, error) {
	var doc *identity.DIDDocument
	var err error
	switch did.Method() {
	case "plc":
		if r.PLC == nil {
			return nil, 0, fmt.Errorf("%w: no PLC directory configured", ErrUnsupportedDID)
		}
		doc, err = r.PLC.Resolve(ctx, did)
		if errors.Is(err, plc.ErrNotFound) {
			return nil, 0, fmt.Errorf("%w: %s: %v", ErrDIDNotFound, did, err)
		}
	case "web":
		doc, err = r.fetchWeb(ctx, did)
	default:
		return nil, 0, fmt.Errorf("%w: method %q", ErrUnsupportedDID, did.Method())
	}
	if err != nil {
		return nil, 0, err
	}
	// The size of what was kept of it (fields the document type does not
	// know are dropped on parsing): what the cache holds.
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, 0, fmt.Errorf("resolve %s: %w", did, err)
	}
	if len(b) > MaxDIDDocument {
		return nil, 0, fmt.Errorf("resolve %s: document larger than %d bytes", did, MaxDIDDocument)
	}
	return doc, int64(len(b)), nil
}

// fetchWeb reads https://HOST/.well-known/did.json (http for localhost).
// Any answer but 200 means the document is not found, as the reference's
// DidWebResolver takes it; redirects are refused.
func (r *Resolver) fetchWeb(ctx context.Context, did syntax.DID) (*identity.DIDDocument, error) {
	id := did.Identifier()
	if strings.Contains(id, ":") {
		return nil, fmt.Errorf("%w: did:web with a path: %s", ErrUnsupportedDID, did)
	}
	host, err := url.PathUnescape(id)
	if err != nil || host == "" || strings.ContainsAny(host, "/?#@") {
		return nil, fmt.Errorf("%w: malformed did:web: %s", ErrUnsupportedDID, did)
	}
	u, err := url.Parse("https://" + host + "/.well-known/did.json")
	if err != nil {
		return nil, fmt.Errorf("%w: malformed did:web: %s", ErrUnsupportedDID, did)
	}
	if u.Hostname() == "localhost" {
		u.Scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/did+ld+json,application/json")
	hc := *r.webClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") }
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", did, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: %s answered %d", ErrDIDNotFound, did, u.Host, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxDIDDocument+1))
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", did, err)
	}
	if len(b) > MaxDIDDocument {
		return nil, fmt.Errorf("resolve %s: document larger than %d bytes", did, MaxDIDDocument)
	}
	var doc identity.DIDDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", did, err)
	}
	if doc.DID != did {
		return nil, fmt.Errorf("resolve %s: the document is %q's", did, doc.DID)
	}
	return &doc, nil
}

func (r *Resolver) webClient() *http.Client {
	if r.Web != nil {
		return r.Web
	}
	return http.DefaultClient
}

// ServiceEndpoint returns the endpoint of doc's service with the given id
// (without '#'), matched as "#id" or "DID#id" like the reference's
// getServiceEndpoint; it must be an http(s) URL. ok is false otherwise.
func ServiceEndpoint(doc *identity.DIDDocument, id string) (*url.URL, bool) {
	for _, s := range doc.Service {
		if s.ID != "#"+id && s.ID != doc.DID.String()+"#"+id {
			continue
		}
		u, err := url.Parse(s.ServiceEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, false
		}
		return u, true
	}
	return nil, false
}
