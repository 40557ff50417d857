package ssrf_test

import (
	"net/netip"
	"testing"

	"github.com/pdslog/pdslog/api/pds/ssrf"
)

func TestPublicAddress(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"8.8.8.8", true}, {"1.1.1.1", true}, {"2606:4700:4700::1111", true}, {"::ffff:8.8.8.8", true},
		{"127.0.0.1", false}, {"127.9.9.9", false}, {"::1", false}, {"::ffff:127.0.0.1", false},
		{"10.0.0.1", false}, {"172.16.5.4", false}, {"192.168.1.1", false}, {"fd00::1", false},
		{"169.254.169.254", false}, {"fe80::1", false},
		{"0.0.0.0", false}, {"::", false}, {"0.1.2.3", false},
		{"224.0.0.1", false}, {"ff02::1", false}, {"255.255.255.255", false}, {"240.0.0.1", false},
		{"100.64.0.1", false}, {"192.0.2.1", false}, {"198.18.0.1", false}, {"198.51.100.1", false}, {"203.0.113.1", false},
		{"2001:db8::1", false}, {"64:ff9b::7f00:1", false}, {"2002:7f00:1::", false}, {"::127.0.0.1", false}, {"fec0::1", false},
	} {
		if got := ssrf.PublicAddress(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("PublicAddress(%s) = %v, want %v", tc.ip, got, tc.public)
		}
	}
}

// TestSSRFGuard: with protection on (the default), services on loopback
// are refused, whether their URL is an IP literal or a name resolving to
// one, over https or http, by header or by default route, and did:web
// documents are not fetched from them either. Nothing reaches them.
