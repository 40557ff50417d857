// Package netguard keeps one network client from taking more than its
// share of the server: which address a request comes from (the
// connection's, or — only from a configured proxy — the forwarded
// header's), the key per-address limits count by (an IPv4 address, an IPv6
// /64), a listener that caps each address's live connections, and a
// per-address counter for long-lived streams.
package netguard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// ParseTrustedProxies parses a comma-separated list of CIDR ranges (a bare
// address is a range of one), as PDSLOG_TRUSTED_PROXIES holds.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP range (CIDR) or address", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func trusts(trusted []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Extractor returns how the server finds a request's client address
// (echo's IPExtractor, behind Context.RealIP). With no trusted proxies it is
// the connection's address: X-Forwarded-For and X-Real-IP are anyone's to
// send. With some, and only for a connection from one of them, it is the
// first address from the right of X-Forwarded-For that is not a trusted
// proxy (what the nearest untrusted hop connected from), or else a valid
// X-Real-IP; a header is never believed from any other peer. Loopback,
// link-local and private ranges are trusted only when listed, unlike echo's
// defaults.
func Extractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	xff := echo.ExtractIPFromXFFHeader(opts...)
	realIP := echo.ExtractIPFromRealIPHeader(opts...)
	return func(r *http.Request) string {
		if len(r.Header[echo.HeaderXForwardedFor]) > 0 {
			return xff(r)
		}
		return realIP(r)
	}
}

// Peer is the address of the connection a request came on.
func Peer(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Key is what per-address limits count by: an IPv4 address, or the /64 an
// IPv6 address is in (one subscriber line gets a whole /64, so counting
// single IPv6 addresses would let one client rotate through billions).
// Anything that is not an address is its own key.
func Key(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	return addrKey(a)
}

func addrKey(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Counter counts live holders per key, refusing beyond a cap (long-lived
// streams such as firehose subscriptions). Safe for concurrent use.
type Counter struct {
	max  int
	mu   sync.Mutex
	live map[string]int
}

// NewCounter returns a counter allowing max holders per key; max ≤ 0
// allows any number.
func NewCounter(max int) *Counter {
	return &Counter{max: max, live: map[string]int{}}
}

// Acquire takes a place for key; it returns false (and takes nothing) when
// key has its cap already. Each true must be matched by one Release.
func (c *Counter) Acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.live[key] >= c.max {
		return false
	}
	c.live[key]++
	return true
}

// Release gives back a place Acquire took.
func (c *Counter) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live[key]--; c.live[key] <= 0 {
		delete(c.live, key)
	}
}

// Live is the number of holders of key.
func (c *Counter) Live(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live[key]
}
