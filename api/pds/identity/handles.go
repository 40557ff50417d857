package identity

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"golang.org/x/sync/singleflight"

	"github.com/pdslog/pdslog/api/pds/ssrf"
)

// Handle resolution limits and cache lifetimes.
const (
	// DefaultHandleTimeout bounds one resolution, both ways together (the
	// reference's idResolver timeout).
	DefaultHandleTimeout = 3 * time.Second
	// DefaultHandleTTL is how long a resolved handle is remembered.
	DefaultHandleTTL = 10 * time.Minute
	// DefaultHandleNegativeTTL is how long a handle that did not resolve
	// is remembered as such (so a burst of lookups asks once).
	DefaultHandleNegativeTTL = time.Minute
	// DefaultHandleCacheEntries bounds the cache; the least recently used
	// entry goes first.
	DefaultHandleCacheEntries = 10_000
)

var (
	// ErrHandleNotFound: neither DNS nor the well-known document names a
	// DID for the handle.
	ErrHandleNotFound = errors.New("identity: handle not found")
	// ErrHandleResolution: resolution failed (timeouts, bad answers).
	ErrHandleResolution = errors.New("identity: handle resolution failed")
)

// HandleResolver resolves handles to DIDs as the atproto spec says: the
// DNS TXT record _atproto.<handle> ("did=...") and
// https://<handle>/.well-known/atproto-did, asked in parallel within one
// timeout; DNS wins when both answer, as the reference's resolver
// prefers it. It does not verify the DID document names the handle back
// (resolveHandle does not, here or in the reference). The lookups are
// indigo's (identity.BaseDirectory); answers, resolved or not, are cached
// in a bounded LRU, and concurrent resolutions of one handle share one.
//
// The zero value is usable: the system's DNS, the SSRF guard off.
type HandleResolver struct {
	// Nameservers ("host:port") are asked for the TXT records, and for
	// the addresses of the well-known fetch, in order; none means the
	// system's resolver.
	Nameservers []string
	// BackupNameservers are asked when the first answer is that the
	// record does not exist (the reference's
	// PDS_HANDLE_BACKUP_NAMESERVERS).
	BackupNameservers []string
	// Guard turns the SSRF guard on for the well-known fetch: https to
	// public unicast addresses only.
	Guard bool
	// HTTP, if set, fetches the well-known documents instead of a client
	// built from Guard and Nameservers (tests trust their own CA with it).
	HTTP *http.Client

	Timeout     time.Duration // 0: DefaultHandleTimeout
	TTL         time.Duration // 0: DefaultHandleTTL
	NegativeTTL time.Duration // 0: DefaultHandleNegativeTTL
	MaxEntries  int           // 0: DefaultHandleCacheEntries
	Now         func() time.Time
	Logger      *slog.Logger

	once   sync.Once
	dir    *identity.BaseDirectory
	group  singleflight.Group
	mu     sync.Mutex
	lru    *list.List // of *handleEntry, most recent first
	byName map[syntax.Handle]*list.Element
}

type handleEntry struct {
	handle  syntax.Handle
	did     syntax.DID
	err     error
	expires time.Time
}

func (r *HandleResolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *HandleResolver) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// dnsResolver asks servers in turn (the system's resolver when none).
func dnsResolver(servers []string) *net.Resolver {
	if len(servers) == 0 {
		return &net.Resolver{}
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		var err error
		for _, s := range servers {
			var c net.Conn
			if c, err = d.DialContext(ctx, network, s); err == nil {
				return c, nil
			}
		}
		return nil, err
	}}
}

func (r *HandleResolver) init() {
	r.once.Do(func() {
		d := &identity.BaseDirectory{UserAgent: "pdslog", FallbackDNSServers: r.BackupNameservers}
		if len(r.Nameservers) > 0 {
			d.Resolver.PreferGo = true
			d.Resolver.Dial = dnsResolver(r.Nameservers).Dial
		}
		if r.HTTP != nil {
			d.HTTPClient = *r.HTTP
		} else {
			dialer := ssrf.Dialer(r.Guard)
			dialer.Resolver = dnsResolver(r.Nameservers)
			d.HTTPClient = http.Client{Transport: ssrf.TransportWith(dialer),
				// the document is at the handle's own host: no redirects
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		}
		r.dir = d
		r.lru, r.byName = list.New(), map[syntax.Handle]*list.Element{}
	})
}

// Resolve returns the DID handle resolves to. Errors wrap
// ErrHandleNotFound when it positively resolves to nothing, else
// ErrHandleResolution.
func (r *HandleResolver) Resolve(ctx context.Context, handle syntax.Handle) (syntax.DID, error) {
	r.init()
	handle = handle.Normalize()
	if e, ok := r.cached(handle); ok {
		return e.did, e.err
	}
	v, err, _ := r.group.Do(handle.String(), func() (any, error) {
		did, err := r.resolve(context.WithoutCancel(ctx), handle)
		ttl := orDefault(r.TTL, DefaultHandleTTL)
		if err != nil {
			ttl = orDefault(r.NegativeTTL, DefaultHandleNegativeTTL)
		}
		r.store(&handleEntry{handle: handle, did: did, err: err, expires: r.now().Add(ttl)})
		return did, err
	})
	did, _ := v.(syntax.DID)
	return did, err
}

// resolve asks DNS and the well-known document at once; DNS's answer wins
// when it has one, else the document's.
func (r *HandleResolver) resolve(ctx context.Context, handle syntax.Handle) (syntax.DID, error) {
	if !handle.AllowedTLD() {
		return "", fmt.Errorf("%w: %s: top-level domain not allowed", ErrHandleNotFound, handle)
	}
	ctx, cancel := context.WithTimeout(ctx, orDefault(r.Timeout, DefaultHandleTimeout))
	defer cancel()
	type answer struct {
		did syntax.DID
		err error
	}
	dnsc, httpc := make(chan answer, 1), make(chan answer, 1)
	httpCtx, stopHTTP := context.WithCancel(ctx)
	defer stopHTTP()
	go func() {
		did, err := r.dir.ResolveHandleDNS(ctx, handle)
		if errors.Is(err, identity.ErrHandleNotFound) && len(r.BackupNameservers) > 0 {
			did, err = r.dir.ResolveHandleDNSFallback(ctx, handle)
		}
		dnsc <- answer{did, err}
	}()
	go func() {
		did, err := r.dir.ResolveHandleWellKnown(httpCtx, handle)
		httpc <- answer{did, err}
	}()
	d := <-dnsc
	if d.err == nil {
		r.logger().Debug("handle resolved", "handle", handle, "did", d.did, "by", "dns")
		return d.did, nil
	}
	h := <-httpc
	if h.err == nil {
		r.logger().Debug("handle resolved", "handle", handle, "did", h.did, "by", "well-known")
		return h.did, nil
	}
	r.logger().Debug("handle not resolved", "handle", handle, "dns", d.err, "well_known", h.err)
	if errors.Is(d.err, identity.ErrHandleNotFound) && errors.Is(h.err, identity.ErrHandleNotFound) {
		return "", fmt.Errorf("%w: %s", ErrHandleNotFound, handle)
	}
	return "", fmt.Errorf("%w: %s: %w", ErrHandleResolution, handle, errors.Join(d.err, h.err))
}

func (r *HandleResolver) cached(h syntax.Handle) (*handleEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byName[h]
	if !ok {
		return nil, false
	}
	e := el.Value.(*handleEntry)
	if !r.now().Before(e.expires) {
		r.lru.Remove(el)
		delete(r.byName, h)
		return nil, false
	}
	r.lru.MoveToFront(el)
	return e, true
}

func (r *HandleResolver) store(e *handleEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byName[e.handle]; ok {
		r.lru.Remove(el)
	}
	r.byName[e.handle] = r.lru.PushFront(e)
	for r.lru.Len() > orDefault(r.MaxEntries, DefaultHandleCacheEntries) {
		old := r.lru.Back()
		r.lru.Remove(old)
		delete(r.byName, old.Value.(*handleEntry).handle)
	}
}

// Forget drops handle's cached answer, if any.
func (r *HandleResolver) Forget(handle syntax.Handle) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byName[handle.Normalize()]; ok {
		r.lru.Remove(el)
		delete(r.byName, handle.Normalize())
	}
}

// CacheLen is how many handles the cache holds.
func (r *HandleResolver) CacheLen() int {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lru.Len()
}
