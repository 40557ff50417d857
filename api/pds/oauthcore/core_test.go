package oauthcore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoopbackClient(t *testing.T) {
	good := map[string]string{
		"http://localhost":  "http://127.0.0.1/",
		"http://localhost/": "http://127.0.0.1/",
		"http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb&scope=atproto+transition%3Ageneric": "http://127.0.0.1:8080/cb",
		"http://localhost?redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%2Fcb":                                       "http://[::1]/cb",
	}
	for id, redirect := range good {
		c, err := (&Resolver{}).Resolve(context.Background(), id)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if !c.Loopback || c.Confidential() || !c.RedirectURIAllowed(redirect) || c.Metadata.ApplicationType != "native" {
			t.Errorf("%s: %+v", id, c)
		}
	}
	for _, id := range []string{
		"http://localhost/path",
		"http://localhost?redirect_uri=http%3A%2F%2Flocalhost%2Fcb",      // localhost, not a loopback IP
		"http://localhost?redirect_uri=https%3A%2F%2Fapp.example.com%2F", // not loopback
		"http://localhost?scope=transition%3Ageneric",                    // no atproto
		"http://localhost?other=1",
		"http://localhost#frag",
	} {
		if _, err := (&Resolver{}).Resolve(context.Background(), id); err == nil {
			t.Errorf("%s accepted", id)
		}
	}
}

// TestRedirectURIAllowed: exact match, except any port for a loopback IP
// registered without one (RFC 8252 §7.3).
func TestRedirectURIAllowed(t *testing.T) {
	c := &Client{Metadata: ClientMetadata{RedirectURIs: []string{"https://app.example.com/cb", "http://127.0.0.1/cb", "http://[::1]:9000/cb"}}}
	for uri, want := range map[string]bool{
		"https://app.example.com/cb":     true,
		"https://app.example.com/cb?x=1": false,
		"https://app.example.com/cb/":    false,
		"https://app.example.com:443/cb": false,
		"https://APP.example.com/cb":     false,
		"http://127.0.0.1:51234/cb":      true,
		"http://127.0.0.1/cb":            true,
		"http://127.0.0.1:51234/other":   false,
		"http://[::1]:9000/cb":           true,
		"http://[::1]:9001/cb":           false,
		"http://user@127.0.0.1:51234/cb": false,
		"https://evil.example.org/cb":    false,
	} {
		if got := c.RedirectURIAllowed(uri); got != want {
			t.Errorf("%s: %v, want %v", uri, got, want)
		}
	}
}

func metadataServer(t *testing.T, md map[string]any) (*Resolver, string) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(md)
	}))
	t.Cleanup(srv.Close)
	hc := srv.Client()
	tr := hc.Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	hc.Transport = tr
	return &Resolver{HTTP: hc}, "https://app.example.com/oauth-client-metadata.json"
}

// TestDiscoverableClientRules: the reference's metadata rules, each
// change refused.
func TestDiscoverableClientRules(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"client_id": "https://app.example.com/oauth-client-metadata.json", "client_name": "App",
			"client_uri": "https://app.example.com", "grant_types": []string{"authorization_code", "refresh_token"},
			"response_types": []string{"code"}, "redirect_uris": []string{"https://app.example.com/cb"},
			"scope": "atproto transition:generic", "token_endpoint_auth_method": "none", "dpop_bound_access_tokens": true}
	}
	r, id := metadataServer(t, base())
	if c, err := r.Resolve(context.Background(), id); err != nil || c.Name() != "App" || c.Host() != "app.example.com" {
		t.Fatalf("good metadata: %+v %v", c, err)
	}
	for name, change := range map[string]func(map[string]any){
		"client_id mismatch":        func(m map[string]any) { m["client_id"] = "https://app.example.com/other.json" },
		"no dpop":                   func(m map[string]any) { m["dpop_bound_access_tokens"] = false },
		"no atproto":                func(m map[string]any) { m["scope"] = "transition:generic" },
		"duplicate scope":           func(m map[string]any) { m["scope"] = "atproto atproto" },
		"implicit grant":            func(m map[string]any) { m["grant_types"] = []string{"authorization_code", "implicit"} },
		"no code response":          func(m map[string]any) { m["response_types"] = []string{"token"} },
		"http redirect":             func(m map[string]any) { m["redirect_uris"] = []string{"http://app.example.com/cb"} },
		"localhost redirect":        func(m map[string]any) { m["redirect_uris"] = []string{"http://localhost/cb"} },
		"loopback redirect for web": func(m map[string]any) { m["redirect_uris"] = []string{"http://127.0.0.1/cb"} },
		"local hostname redirect":   func(m map[string]any) { m["redirect_uris"] = []string{"https://app.test/cb"} },
		"client_uri elsewhere":      func(m map[string]any) { m["client_uri"] = "https://other.example.com" },
		"secret auth":               func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" },
		"private_key_jwt no keys": func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["token_endpoint_auth_signing_alg"] = "ES256"
		},
		"none with alg": func(m map[string]any) { m["token_endpoint_auth_signing_alg"] = "ES256" },
		"wrong private-use scheme": func(m map[string]any) {
			m["application_type"] = "native"
			m["redirect_uris"] = []string{"com.other.app:/cb"}
		},
	} {
		md := base()
		change(md)
		r, id := metadataServer(t, md)
		_, err := r.Resolve(context.Background(), id)
		var oe *Error
		if !errors.As(err, &oe) || oe.Code != "invalid_client_metadata" {
			t.Errorf("%s: %v, want invalid_client_metadata", name, err)
		}
	}
	for _, id := range []string{"http://app.example.com/m.json", "https://app.example.com/", "https://app.example.com/m/", "https://1.2.3.4/m.json",
		"https://app.test/m.json", "https://u:p@app.example.com/m.json", "https://app.example.com/m.json#x"} {
		if _, err := (&Resolver{HTTP: http.DefaultClient}).Resolve(context.Background(), id); err == nil {
			t.Errorf("client_id %s accepted", id)
		}
	}
}

func TestScopes(t *testing.T) {
	for _, s := range []string{"atproto", "atproto transition:generic transition:email", "atproto repo:app.bsky.feed.post?action=create blob:image/*",
		"atproto rpc:app.bsky.feed.getFeed?aud=did:web:api.bsky.app%23bsky_appview identity:handle account:email"} {
		if _, err := ParseRequestScope(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "transition:generic", "atproto atproto", "atproto openid", "atproto include:app.bsky.authFull",
		"atproto repo:notannsid", "atproto  transition:generic", "atproto rpc:*?aud=*", "atproto whatever"} {
		if _, err := ParseRequestScope(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	p := NewPermissions("atproto repo:app.bsky.feed.like?action=create repo:app.bsky.graph.follow blob:image/* account:email rpc:app.bsky.feed.getFeed?aud=did:web:x%23svc")
	for _, c := range []struct {
		got, want bool
		what      string
	}{
		{p.AllowsRepo("app.bsky.feed.like", "create"), true, "like create"},
		{p.AllowsRepo("app.bsky.feed.like", "delete"), false, "like delete"},
		{p.AllowsRepo("app.bsky.graph.follow", "delete"), true, "follow delete (all actions by default)"},
		{p.AllowsRepo("app.bsky.feed.post", "create"), false, "post"},
		{p.AllowsBlob("image/png"), true, "png"},
		{p.AllowsBlob("video/mp4"), false, "mp4"},
		{p.AllowsAccount("email", "read"), true, "email read"},
		{p.AllowsAccount("email", "manage"), false, "email manage"},
		{p.AllowsRPC("did:web:x#svc", "app.bsky.feed.getFeed"), true, "getFeed at x"},
		{p.AllowsRPC("did:web:y#svc", "app.bsky.feed.getFeed"), false, "getFeed at y"},
		{p.AllowsIdentity("handle"), false, "handle"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	g := NewPermissions("atproto transition:generic")
	if !g.AllowsRepo("x.y.z", "delete") || !g.AllowsRPC("did:web:a#b", "app.bsky.feed.getFeed") || g.AllowsRPC("did:web:a#b", "chat.bsky.convo.listConvos") ||
		g.AllowsAccount("email", "read") || g.AllowsIdentity("handle") {
		t.Error("transition:generic is not app-password-like")
	}
	if items := Describe("atproto transition:generic repo:app.bsky.feed.post?action=create"); len(items) != 3 || !strings.Contains(items[2].Detail, "app.bsky.feed.post") {
		t.Errorf("Describe: %+v", items)
	}
}

func TestNoncesAndPKCE(t *testing.T) {
	n := NewNonces()
	now := time.Now()
	cur := n.Next(now)
	if !n.Check(cur, now) || !n.Check(cur, now.Add(NonceMaxAge/3)) || n.Check(cur, now.Add(NonceMaxAge+time.Second)) || n.Check("x", now) {
		t.Error("nonce window")
	}
	if NewNonces().Check(cur, now) {
		t.Error("a nonce of another secret (another process) accepted")
	}
	v := strings.Repeat("a", 43)
	ch := "sAv5mHh4kRx0Xj-y8cVv4_Pb0Q4Wp8C1j5ZRlJ2qRkc"
	if err := CheckPKCE(ch, v); err == nil {
		t.Error("wrong verifier accepted")
	}
	sum := sha256.Sum256([]byte(v))
	if good := base64.RawURLEncoding.EncodeToString(sum[:]); CheckPKCE(good, v) != nil || !ValidChallenge(good) {
		t.Error("the right verifier refused")
	}
	for _, bad := range []string{"", strings.Repeat("a", 42), strings.Repeat("a", 129), strings.Repeat("a", 42) + "!"} {
		if err := CheckPKCE(ch, bad); err == nil {
			t.Errorf("verifier %q accepted", bad)
		}
	}
	r := NewReplay(2)
	if ok, _ := r.Unique("a", now.Add(time.Minute), now); !ok {
		t.Error("first use refused")
	}
	if ok, _ := r.Unique("a", now.Add(time.Minute), now); ok {
		t.Error("replay accepted")
	}
	r.Unique("b", now.Add(time.Minute), now)
	if _, err := r.Unique("c", now.Add(time.Minute), now); !errors.Is(err, ErrReplayFull) {
		t.Error("a full cache did not fail closed")
	}
	if ok, err := r.Unique("c", now.Add(3*time.Minute), now.Add(2*time.Minute)); !ok || err != nil {
		t.Error("expired entries were not dropped")
	}
}
