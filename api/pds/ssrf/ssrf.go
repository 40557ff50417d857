// Package ssrf guards pdslog's outbound requests to addresses a caller
// chose (service endpoints, did:web documents, OAuth client metadata):
// with the guard on, only https to public unicast addresses, checked at
// dial time so DNS answers cannot point it inside. It is the reference
// PDS's unicastLookup and "Forbidden protocol" rules.
package ssrf

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrForbiddenAddress is wrapped by every refusal of the SSRF guard: a
// connection to an address that is not public unicast, or a service URL
// that is not https, while the guard is on.
var ErrForbiddenAddress = errors.New("ssrf: forbidden address")

// nonPublic are the address ranges the guard refuses besides what
// netip.Addr's own predicates catch (loopback, private, link-local,
// multicast, unspecified): the ranges ipaddr.js, which the reference's
// unicastLookup uses, does not call "unicast".
var nonPublic = mustPrefixes(
	"0.0.0.0/8",       // "this network"
	"100.64.0.0/10",   // carrier-grade NAT
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // TEST-NET-1
	"192.31.196.0/24", // AS112
	"192.52.193.0/24", // AMT
	"192.88.99.0/24",  // 6to4 relay anycast
	"192.175.48.0/24", // AS112
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // TEST-NET-2
	"203.0.113.0/24",  // TEST-NET-3
	"240.0.0.0/4",     // reserved, and the broadcast address
	"::/96",           // IPv4-compatible (deprecated)
	"64:ff9b::/96",    // NAT64 (RFC 6052)
	"64:ff9b:1::/48",  // local-use NAT64
	"100::/64",        // discard-only
	"2001::/23",       // IETF protocol assignments (Teredo, benchmarking, ORCHID …)
	"2001:db8::/32",   // documentation
	"2002::/16",       // 6to4
	"3fff::/20",       // documentation
	"5f00::/16",       // segment routing SIDs
	"fec0::/10",       // site-local (deprecated)
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// PublicAddress reports whether ip is a public unicast address the proxy
// may connect to: not loopback, private, link-local, multicast,
// unspecified, broadcast, or any of the special-purpose ranges above.
// IPv4-mapped IPv6 addresses are judged as the IPv4 address they map.
func PublicAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() ||
		ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// guardControl is a net.Dialer Control function refusing connections to
// addresses that are not public. It runs after name resolution, on the
// address actually dialed, so a name that resolves (or re-resolves) to a
// private address is refused too.
func guardControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrForbiddenAddress, address)
	}
	if !PublicAddress(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public unicast address", ErrForbiddenAddress, ap.Addr())
	}
	return nil
}

// Transport is the proxy's HTTP transport: no environment proxy (it
// would route around the guard), HTTP/1.1 as the reference's default, and,
// when guard is set, the SSRF guard on every dial.
func Transport(guard bool) *http.Transport {
	return TransportWith(Dialer(guard))
}

// Dialer is the dialer of Transport: with guard set, every connection to
// an address that is not public unicast is refused at dial time. Its
// Resolver may be set (handle resolution asks the nameservers it was
// given); the guard judges whatever address the name resolves to.
func Dialer(guard bool) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if guard {
		d.Control = guardControl
	}
	return d
}

// TransportWith is Transport dialing with d.
func TransportWith(d *net.Dialer) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     false, // the reference's default (PDS_PROXY_ALLOW_HTTP2 off)
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// CheckURL applies the guard's rules that come before any dial: with the
// guard on only https is allowed (the reference's "Forbidden protocol"),
// and a literal IP host must be public.
func CheckURL(u *url.URL, guard bool) error {
	if !guard {
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%w: protocol %q (only https is allowed)", ErrForbiddenAddress, u.Scheme+":")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !PublicAddress(ip) {
		return fmt.Errorf("%w: %s is not a public unicast address", ErrForbiddenAddress, ip)
	}
	return nil
}
