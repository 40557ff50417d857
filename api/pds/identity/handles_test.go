package identity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/identity"
	"github.com/pdslog/pdslog/api/pds/identity/identitytest"
	"github.com/pdslog/pdslog/api/pds/ssrf"
)

// TestHandleResolverBothWays resolves handles hosted elsewhere against a
// real DNS server (miekg/dns on loopback, the resolver pointed at it) and
// a real HTTPS server (a self-signed certificate for the handles' domain,
// trusted by the test's client, reached at the address the DNS server
// gives): by TXT record, by well-known document, DNS winning when both
// answer, not found when neither does; answers are cached (the DNS server
// is not asked again), failures too for a shorter time, and the cache is
// bounded.
func TestHandleResolverBothWays(t *testing.T) {
	w := identitytest.StartWorld(t)
	w.DNS.SetTXT("dns-only.foreign.test", "did=did:plc:dnsonly0000000000000000")
	w.DNS.SetTXT("both.foreign.test", "did=did:plc:bothdns00000000000000000")
	w.Web.Set("web-only.foreign.test", "did:plc:webonly0000000000000000")
	w.Web.Set("both.foreign.test", "did:plc:bothweb0000000000000000")
	clock := time.Now()
	r := &identity.HandleResolver{Nameservers: []string{w.DNS.Addr}, HTTP: w.Web.Client(w.DNS.Addr), Now: func() time.Time { return clock }, MaxEntries: 3}
	ctx := context.Background()
	// In this order (the cache holds 3): dns-only is still cached after
	// the two failures below, whose entries evict the older ones.
	for _, c := range []struct{ h, want string }{
		{"web-only.foreign.test", "did:plc:webonly0000000000000000"},
		{"both.foreign.test", "did:plc:bothdns00000000000000000"},
		{"dns-only.foreign.test", "did:plc:dnsonly0000000000000000"},
		{"DNS-Only.Foreign.Test", "did:plc:dnsonly0000000000000000"},
	} {
		h, want := c.h, c.want
		did, err := r.Resolve(ctx, syntax.Handle(h))
		if err != nil || did.String() != want {
			t.Fatalf("%s: %q %v, want %s", h, did, err, want)
		}
	}
	if w.Web.Hits("web-only.foreign.test") == 0 {
		t.Fatal("the well-known document was never fetched")
	}
	if _, err := r.Resolve(ctx, "nobody.foreign.test"); !errors.Is(err, identity.ErrHandleNotFound) {
		t.Fatalf("unknown handle: %v", err)
	}
	if _, err := r.Resolve(ctx, "someone.example"); !errors.Is(err, identity.ErrHandleNotFound) {
		t.Fatalf("reserved TLD: %v", err)
	}

	// Cached: the DNS server is not asked again, until the entry expires.
	asked := w.DNS.TXTQueries("dns-only.foreign.test")
	if did, err := r.Resolve(ctx, "dns-only.foreign.test"); err != nil || did != "did:plc:dnsonly0000000000000000" || w.DNS.TXTQueries("dns-only.foreign.test") != asked {
		t.Fatalf("cached answer: %s %v, DNS asked %d times (was %d)", did, err, w.DNS.TXTQueries("dns-only.foreign.test"), asked)
	}
	w.DNS.SetTXT("nobody.foreign.test", "did=did:plc:latecomer000000000000000")
	if _, err := r.Resolve(ctx, "nobody.foreign.test"); !errors.Is(err, identity.ErrHandleNotFound) {
		t.Fatalf("a failure is cached too: %v", err)
	}
	clock = clock.Add(identity.DefaultHandleNegativeTTL + time.Second)
	if did, err := r.Resolve(ctx, "nobody.foreign.test"); err != nil || did != "did:plc:latecomer000000000000000" {
		t.Fatalf("after the negative TTL: %s %v", did, err)
	}
	if n := r.CacheLen(); n > 3 {
		t.Fatalf("cache holds %d entries, bound 3", n)
	}
	clock = clock.Add(identity.DefaultHandleTTL)
	w.DNS.SetTXT("dns-only.foreign.test", "did=did:plc:moved000000000000000000")
	if did, err := r.Resolve(ctx, "dns-only.foreign.test"); err != nil || did != "did:plc:moved000000000000000000" {
		t.Fatalf("after the TTL: %s %v", did, err)
	}
}

// TestHandleResolverTimeout: a DNS server that never answers and a
// well-known host that never answers fail the resolution within the
// timeout, as an error that is not "not found".
func TestHandleResolverTimeout(t *testing.T) {
	w := identitytest.StartWorld(t)
	w.DNS.Stall("stuck.foreign.test")
	w.Web.Stall("stuck.foreign.test")
	r := &identity.HandleResolver{Nameservers: []string{w.DNS.Addr}, HTTP: w.Web.Client(w.DNS.Addr), Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err := r.Resolve(context.Background(), "stuck.foreign.test")
	if err == nil || errors.Is(err, identity.ErrHandleNotFound) || !errors.Is(err, identity.ErrHandleResolution) {
		t.Fatalf("stalled resolution: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %s with a 300ms timeout", took)
	}
}

// TestHandleResolverSSRFGuard: with the guard on, the well-known fetch of
// a handle whose name resolves to a loopback address is refused at dial
// time, even though a server listens there.
func TestHandleResolverSSRFGuard(t *testing.T) {
	w := identitytest.StartWorld(t)
	w.Web.Set("inside.foreign.test", "did:plc:inside00000000000000000")
	r := &identity.HandleResolver{Nameservers: []string{w.DNS.Addr}, Guard: true}
	_, err := r.Resolve(context.Background(), "inside.foreign.test")
	if !errors.Is(err, ssrf.ErrForbiddenAddress) {
		t.Fatalf("guarded fetch of a loopback host: %v", err)
	}
	if w.Web.Hits("inside.foreign.test") != 0 {
		t.Fatal("the guarded resolver reached the loopback server")
	}
}
