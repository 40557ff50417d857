package proxy_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/proxy/proxytest"
)

func TestSSRFGuard(t *testing.T) {
	env := proxytest.NewEnv(t, func(c *proxy.Config) { c.DisableSSRFProtection = false })
	alice := env.CreateUser()
	tlsSvc := proxytest.Start(t, env.PLCURL, &proxytest.Options{TLS: true})
	u, _ := url.Parse(tlsSvc.URL)
	key, _ := atcrypto.GeneratePrivateKeyK256()
	byName := proxytest.Register(t, env.PLCURL, key, "https://localhost:"+u.Port())

	// The caller learns only that the call was refused; what the name
	// resolved to, and why it was refused, go to the log.
	for _, tc := range []struct{ name, header, path, logged string }{
		{"https IP literal", tlsSvc.Ref("atproto_labeler"), "com.atproto.label.queryLabels", "127.0.0.1 is not a public unicast address"},
		{"https name resolving to loopback", byName.String() + "#atproto_labeler", "com.atproto.label.queryLabels", "127.0.0.1 is not a public unicast address"},
		{"http service", env.Mod.Ref("atproto_labeler"), "com.atproto.label.queryLabels", `protocol \"http:\" (only https is allowed)`},
		{"default AppView on http", "", "app.bsky.feed.getTimeline", `protocol \"http:\" (only https is allowed)`},
		{"did:web on loopback", env.Mod.WebDID().String() + "#atproto_labeler", "com.atproto.label.queryLabels", "127.0.0.1 is not a public unicast address"},
	} {
		var headers []string
		if tc.header != "" {
			headers = []string{"atproto-proxy", tc.header}
		}
		before := len(env.Logs.String())
		r := env.Request("GET", "/xrpc/"+tc.path, nil, alice.Token, nil, headers...)
		name, msg := errorName(t, r.Body)
		if r.Status != 502 || name != "UpstreamFailure" || !strings.Contains(msg, "refused") {
			t.Errorf("%s: %d %s, want 502 UpstreamFailure saying refused", tc.name, r.Status, r.Body)
		}
		for _, leak := range []string{"127.0.0.1", "unicast", "protocol", "dial", "http:"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: the caller is told %q (%s)", tc.name, leak, msg)
			}
		}
		if logged := env.Logs.String()[before:]; !strings.Contains(logged, tc.logged) {
			t.Errorf("%s: the log lacks %q:\n%s", tc.name, tc.logged, logged)
		}
	}
	for _, s := range []*proxytest.Service{tlsSvc, env.Mod, env.AppView} {
		if n := len(s.Calls()); n != 0 {
			t.Errorf("a guarded service received %d calls", n)
		}
	}
}
