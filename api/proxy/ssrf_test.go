package proxy_test

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/proxy/proxytest"
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
		if got := proxy.PublicAddress(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("PublicAddress(%s) = %v, want %v", tc.ip, got, tc.public)
		}
	}
}

// TestSSRFGuard: with protection on (the default), services on loopback
// are refused, whether their URL is an IP literal or a name resolving to
// one, over https or http, by header or by default route, and did:web
// documents are not fetched from them either. Nothing reaches them.
func TestSSRFGuard(t *testing.T) {
	env := proxytest.NewEnv(t, func(c *proxy.Config) { c.DisableSSRFProtection = false })
	alice := env.CreateUser()
	tlsSvc := proxytest.Start(t, env.PLCURL, &proxytest.Options{TLS: true})
	u, _ := url.Parse(tlsSvc.URL)
	key, _ := atcrypto.GeneratePrivateKeyK256()
	byName := proxytest.Register(t, env.PLCURL, key, "https://localhost:"+u.Port())

	for _, tc := range []struct{ name, header, path, msg string }{
		{"https IP literal", tlsSvc.Ref("atproto_labeler"), "com.atproto.label.queryLabels", "127.0.0.1 is not a public unicast address"},
		{"https name resolving to loopback", byName.String() + "#atproto_labeler", "com.atproto.label.queryLabels", "is not a public unicast address"},
		{"http service", env.Mod.Ref("atproto_labeler"), "com.atproto.label.queryLabels", `protocol "http:" (only https is allowed)`},
		{"default AppView on http", "", "app.bsky.feed.getTimeline", `protocol "http:" (only https is allowed)`},
		{"did:web on loopback", env.Mod.WebDID().String() + "#atproto_labeler", "com.atproto.label.queryLabels", "is not a public unicast address"},
	} {
		var headers []string
		if tc.header != "" {
			headers = []string{"atproto-proxy", tc.header}
		}
		r := env.Request("GET", "/xrpc/"+tc.path, nil, alice.Token, nil, headers...)
		name, msg := errorName(t, r.Body)
		if r.Status != 502 || name != "UpstreamFailure" || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %s, want 502 UpstreamFailure containing %q", tc.name, r.Status, r.Body, tc.msg)
		}
	}
	for _, s := range []*proxytest.Service{tlsSvc, env.Mod, env.AppView} {
		if n := len(s.Calls()); n != 0 {
			t.Errorf("a guarded service received %d calls", n)
		}
	}
}
