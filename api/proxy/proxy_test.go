package proxy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/proxy/proxytest"
	"github.com/pdslog/pdslog/api/xrpc"
)

// claims decodes a JWT's payload without verifying it (the stand-in has
// verified it already).
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func errorName(t *testing.T, b []byte) (string, string) {
	t.Helper()
	var e xrpc.Body
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return e.Error, e.Message
}

// lastCall returns the stand-in's last call, failing if it received none
// since n calls.
func lastCall(t *testing.T, s *proxytest.Service, n int) proxytest.Call {
	t.Helper()
	calls := s.Calls()
	if len(calls) != n+1 {
		t.Fatalf("stand-in received %d calls, want %d", len(calls), n+1)
	}
	return calls[n]
}

func TestProxy(t *testing.T) {
	env := proxytest.NewEnv(t, nil)
	alice := env.CreateUser()
	labeler := proxytest.Start(t, env.PLCURL, nil)

	t.Run("HeaderRouting", func(t *testing.T) {
		labeler.Handle("com.atproto.label.queryLabels", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
			w.Header().Set("Content-Language", "fr")
			proxytest.JSON(w, map[string]any{"labels": []any{}, "echo": r.URL.RawQuery}, "Atproto-Repo-Rev", "3kabc", "Atproto-Content-Labelers", "did:plc:x", "X-Secret", "no")
		})
		n := len(labeler.Calls())
		r := env.Request("GET", "/xrpc/com.atproto.label.queryLabels", url.Values{"uriPatterns": {"at://a", "at://b"}}, alice.Token, nil,
			"atproto-proxy", labeler.Ref("atproto_labeler"), "Accept-Language", "fr-CA", "Atproto-Accept-Labelers", "did:plc:lab;redact",
			"X-Bsky-Topics", "t1", "Cookie", "session=1", "X-Custom", "private")
		if r.Status != 200 {
			t.Fatalf("proxied call: %d %s", r.Status, r.Body)
		}
		var body struct{ Echo string }
		r.JSON(t, &body)
		if body.Echo != "uriPatterns=at%3A%2F%2Fa&uriPatterns=at%3A%2F%2Fb" {
			t.Errorf("query not passed on: %q", body.Echo)
		}
		for h, want := range map[string]string{"Atproto-Repo-Rev": "3kabc", "Atproto-Content-Labelers": "did:plc:x", "Content-Language": "fr", "X-Secret": ""} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("answer header %s = %q, want %q", h, got, want)
			}
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		c := lastCall(t, labeler, n)
		if c.Issuer != alice.DID {
			t.Errorf("token issuer %s, want %s", c.Issuer, alice.DID)
		}
		for h, want := range map[string]string{"Accept-Language": "fr-CA", "Atproto-Accept-Labelers": "did:plc:lab;redact", "X-Bsky-Topics": "t1",
			"Cookie": "", "X-Custom": "", "Atproto-Proxy": ""} {
			if got := c.Header.Get(h); got != want {
				t.Errorf("forwarded header %s = %q, want %q", h, got, want)
			}
		}
		if strings.Contains(c.Header.Get("Authorization"), alice.Token) {
			t.Error("the session token was forwarded")
		}
		cl := claims(t, c.Token)
		iat, exp := cl["iat"].(float64), cl["exp"].(float64)
		if cl["aud"] != labeler.DID.String() || cl["lxm"] != "com.atproto.label.queryLabels" || exp-iat > 60 || exp <= float64(time.Now().Unix()) ||
			len(cl["jti"].(string)) < 16 {
			t.Errorf("token claims %v", cl)
		}
		// A second call has a fresh token (new jti).
		env.Request("GET", "/xrpc/com.atproto.label.queryLabels", nil, alice.Token, nil, "atproto-proxy", labeler.Ref("atproto_labeler"))
		if c2 := lastCall(t, labeler, n+1); claims(t, c2.Token)["jti"] == cl["jti"] {
			t.Error("jti reused")
		}
	})

	t.Run("ProcedureBody", func(t *testing.T) {
		labeler.Handle("com.example.echo", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
			proxytest.JSON(w, map[string]any{"got": string(c.Body), "type": r.Header.Get("Content-Type")})
		})
		n := len(labeler.Calls())
		r := env.Request("POST", "/xrpc/com.example.echo", nil, alice.Token, []byte(`{"x":[1,2,3]}`), "atproto-proxy", labeler.Ref("atproto_labeler"))
		var body struct{ Got, Type string }
		r.JSON(t, &body)
		if r.Status != 200 || body.Got != `{"x":[1,2,3]}` || body.Type != "application/json" {
			t.Fatalf("procedure: %d %+v", r.Status, body)
		}
		if c := lastCall(t, labeler, n); c.Method != "POST" {
			t.Errorf("method %s", c.Method)
		}
	})

	t.Run("DefaultRouting", func(t *testing.T) {
		nav, nmod := len(env.AppView.Calls()), len(env.Mod.Calls())
		if r := env.Request("GET", "/xrpc/app.bsky.feed.getFeed", url.Values{"feed": {"at://x"}}, alice.Token, nil); r.Status != 200 {
			t.Fatalf("app.bsky default: %d %s", r.Status, r.Body)
		}
		if c := lastCall(t, env.AppView, nav); c.NSID != "app.bsky.feed.getFeed" || claims(t, c.Token)["aud"] != env.AppView.DID.String() {
			t.Errorf("AppView call %s aud %v", c.NSID, claims(t, c.Token)["aud"])
		}
		if r := env.Request("POST", "/xrpc/tools.ozone.moderation.emitEvent", nil, alice.Token, map[string]any{}); r.Status != 200 {
			t.Fatalf("tools.ozone default: %d %s", r.Status, r.Body)
		}
		if r := env.Request("POST", "/xrpc/com.atproto.moderation.createReport", nil, alice.Token, map[string]any{}); r.Status != 200 {
			t.Fatalf("createReport default: %d %s", r.Status, r.Body)
		}
		calls := env.Mod.Calls()[nmod:]
		if len(calls) != 2 || calls[0].NSID != "tools.ozone.moderation.emitEvent" || calls[1].NSID != "com.atproto.moderation.createReport" {
			t.Fatalf("moderation service calls %+v", calls)
		}
		// No route: 501, and nothing forwarded.
		for _, m := range []string{"com.example.nothing", "chat.bsky.convo.listConvos", "com.atproto.temp.fetchLabels"} {
			r := env.Request("GET", "/xrpc/"+m, nil, alice.Token, nil)
			if name, _ := errorName(t, r.Body); r.Status != 501 || name != "MethodNotImplemented" {
				t.Errorf("%s: %d %s", m, r.Status, r.Body)
			}
		}
		if len(env.AppView.Calls()) != nav+1 {
			t.Error("unrouted calls reached the AppView")
		}
	})

	t.Run("ProtectedNeverProxied", func(t *testing.T) {
		n := len(labeler.Calls())
		for _, m := range []string{"com.atproto.server.requestEmailUpdate", "com.atproto.server.updateEmail", "com.atproto.identity.signPlcOperation",
			"com.atproto.admin.sendEmail", "com.atproto.server.REQUESTACCOUNTDELETE"} {
			r := env.Request("POST", "/xrpc/"+m, nil, alice.Token, map[string]any{}, "atproto-proxy", labeler.Ref("atproto_labeler"))
			if name, _ := errorName(t, r.Body); r.Status != 400 || name != "InvalidToken" {
				t.Errorf("%s: %d %s", m, r.Status, r.Body)
			}
		}
		if len(labeler.Calls()) != n {
			t.Fatal("a protected method was forwarded")
		}
	})

	t.Run("Unauthenticated", func(t *testing.T) {
		n := len(env.AppView.Calls())
		r := env.Request("GET", "/xrpc/app.bsky.feed.getFeed", nil, "", nil)
		if name, _ := errorName(t, r.Body); r.Status != 401 || name != "AuthMissing" {
			t.Errorf("no credentials: %d %s", r.Status, r.Body)
		}
		if len(env.AppView.Calls()) != n {
			t.Fatal("an unauthenticated call was forwarded")
		}
	})

	t.Run("ChatNeedsPrivilege", func(t *testing.T) {
		plain := env.AppPassword(alice, "plain", false)
		priv := env.AppPassword(alice, "priv", true)
		n := len(labeler.Calls())
		// listConvos is in the reference's list; getConvoAvailability is only
		// caught by the chat.bsky.* namespace rule.
		for _, m := range []string{"chat.bsky.convo.listConvos", "chat.bsky.convo.getConvoAvailability"} {
			r := env.Request("GET", "/xrpc/"+m, nil, plain, nil, "atproto-proxy", labeler.Ref("bsky_chat"))
			if name, _ := errorName(t, r.Body); r.Status != 400 || name != "InvalidToken" {
				t.Errorf("%s with an app password: %d %s", m, r.Status, r.Body)
			}
		}
		if len(labeler.Calls()) != n {
			t.Fatal("a chat call with an ordinary app password was forwarded")
		}
		for _, tok := range []string{priv, alice.Token} {
			if r := env.Request("GET", "/xrpc/chat.bsky.convo.getConvoAvailability", nil, tok, nil, "atproto-proxy", labeler.Ref("bsky_chat")); r.Status != 200 {
				t.Errorf("chat with a privileged session: %d %s", r.Status, r.Body)
			}
		}
		// Ordinary app passwords still reach the AppView.
		if r := env.Request("GET", "/xrpc/app.bsky.feed.getFeed", nil, plain, nil); r.Status != 200 {
			t.Errorf("app.bsky with an app password: %d %s", r.Status, r.Body)
		}
	})

	t.Run("Unresolvable", func(t *testing.T) {
		n := len(labeler.Calls())
		for _, tc := range []struct{ header, status, msg string }{
			{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto_labeler", "400", "could not resolve proxy did did:plc:aaaaaaaaaaaaaaaaaaaaaaaa: no DID document"},
			{labeler.Ref("nope"), "400", "has no service #nope"},
			{"did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme#x", "400", "unsupported DID"},
			{"no-hash", "400", "no service id specified in proxy header"},
			{"#atproto_labeler", "400", "no did specified in proxy header"},
			{labeler.DID.String() + "#", "400", "no service id specified in proxy header"},
			{labeler.Ref("a#b"), "400", "invalid proxy header format"},
			{labeler.Ref("a b"), "400", "proxy header cannot contain spaces"},
			{"notadid#x", "400", "invalid DID in proxy header"},
		} {
			r := env.Request("GET", "/xrpc/com.atproto.label.queryLabels", nil, alice.Token, nil, "atproto-proxy", tc.header)
			name, msg := errorName(t, r.Body)
			if r.Status != 400 || name != "InvalidRequest" || !strings.Contains(msg, tc.msg) {
				t.Errorf("header %q: %d %s, want 400 InvalidRequest containing %q", tc.header, r.Status, r.Body, tc.msg)
			}
		}
		if len(labeler.Calls()) != n {
			t.Fatal("a call was forwarded")
		}
	})

	t.Run("UpstreamErrors", func(t *testing.T) {
		labeler.Handle("com.example.fail", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
			w.Header().Set("Atproto-Repo-Rev", "3kxyz")
			w.Header().Set("Content-Type", "application/json")
			switch r.URL.Query().Get("kind") {
			case "500":
				w.WriteHeader(500)
				_, _ = w.Write([]byte(`{"error":"Boom","message":"it broke"}`))
			case "html":
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(404)
				_, _ = w.Write([]byte(`<html>gone</html>`))
			default:
				w.WriteHeader(400)
				_, _ = w.Write([]byte(`{"error":"NotFound","message":"post not found"}`))
			}
		})
		for _, tc := range []struct{ kind, name, msg string }{
			{"", "NotFound", "post not found"}, {"500", "Boom", "it broke"}, {"html", "XRPCNotSupported", "Not Found"},
		} {
			r := env.Request("GET", "/xrpc/com.example.fail", url.Values{"kind": {tc.kind}}, alice.Token, nil, "atproto-proxy", labeler.Ref("atproto_labeler"))
			name, msg := errorName(t, r.Body)
			want := map[string]int{"": 400, "500": 502, "html": 404}[tc.kind]
			if r.Status != want || name != tc.name || msg != tc.msg || r.Header.Get("Atproto-Repo-Rev") != "3kxyz" {
				t.Errorf("upstream %q error: %d %s rev %q", tc.kind, r.Status, r.Body, r.Header.Get("Atproto-Repo-Rev"))
			}
		}
	})

	t.Run("DIDWeb", func(t *testing.T) {
		// A service named by did:web:localhost%3APORT: its document comes
		// from http://localhost:PORT/.well-known/did.json (dev mode).
		labeler.ExpectAudience(labeler.WebDID().String())
		defer labeler.ExpectAudience(labeler.DID.String())
		n := len(labeler.Calls())
		r := env.Request("GET", "/xrpc/com.atproto.label.queryLabels", nil, alice.Token, nil, "atproto-proxy", labeler.WebDID().String()+"#atproto_labeler")
		if r.Status != 200 {
			t.Fatalf("did:web service: %d %s", r.Status, r.Body)
		}
		if c := lastCall(t, labeler, n); claims(t, c.Token)["aud"] != labeler.WebDID().String() {
			t.Errorf("aud %v", claims(t, c.Token)["aud"])
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		r := env.Request("HEAD", "/xrpc/app.bsky.feed.getFeed", nil, alice.Token, nil)
		if r.Status != 200 || len(r.Body) != 0 {
			t.Errorf("HEAD: %d %q", r.Status, r.Body)
		}
		if r := env.Request("PUT", "/xrpc/app.bsky.feed.getFeed", nil, alice.Token, nil); r.Status != 400 {
			t.Errorf("PUT: %d %s", r.Status, r.Body)
		}
	})
}

// TestStandInVerifier shows the stand-ins' check is a real one: indigo's
// validator refuses a token with the wrong audience, method, key or
// expiry, and accepts the right one.
func TestStandInVerifier(t *testing.T) {
	env := proxytest.NewEnv(t, nil)
	s, other := env.AppView, env.Mod // other's DID serves as the issuer
	ctx := context.Background()
	lxm := syntax.NSID("app.bsky.feed.getTimeline")
	sign := func(key atcrypto.PrivateKey, aud string, lxm string, exp time.Time) string {
		tok, err := auth.ServiceJWT(key, other.DID, aud, lxm, exp)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	soon := time.Now().Add(time.Minute)
	if iss, err := s.Verify(ctx, sign(other.Key, s.DID.String(), lxm.String(), soon), lxm); err != nil || iss != other.DID {
		t.Fatalf("a good token: %v %v", iss, err)
	}
	stranger, _ := atcrypto.GeneratePrivateKeyK256()
	for name, tok := range map[string]string{
		"wrong aud":      sign(other.Key, other.DID.String(), lxm.String(), soon),
		"fragment aud":   sign(other.Key, s.Ref("bsky_appview"), lxm.String(), soon),
		"wrong lxm":      sign(other.Key, s.DID.String(), "app.bsky.feed.getAuthorFeed", soon),
		"no lxm":         sign(other.Key, s.DID.String(), "", soon),
		"other key":      sign(stranger, s.DID.String(), lxm.String(), soon),
		"expired":        sign(other.Key, s.DID.String(), lxm.String(), time.Now().Add(-time.Minute)),
		"tampered claim": strings.Replace(sign(other.Key, s.DID.String(), lxm.String(), soon), ".", ".x", 1),
	} {
		if _, err := s.Verify(ctx, tok, lxm); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// With the combined-aud setting the stand-in requires DID#service.
	s.ExpectAudience(s.Ref("bsky_appview"))
	if _, err := s.Verify(ctx, sign(other.Key, s.DID.String(), lxm.String(), soon), lxm); err == nil {
		t.Error("bare aud accepted where DID#service is required")
	}
}

// TestCombinedAudience: with PDS_PROXY_SERVICE_AUTH_COMBINED_AUD the
// tokens name DID#service, and a verifier requiring that accepts them.
func TestCombinedAudience(t *testing.T) {
	env := proxytest.NewEnv(t, func(c *proxy.Config) { c.ServiceAuthCombinedAud = true })
	alice := env.CreateUser()
	env.AppView.ExpectAudience(env.AppView.Ref("bsky_appview"))
	env.Mod.ExpectAudience(env.Mod.Ref("atproto_labeler"))
	if r := env.Request("GET", "/xrpc/app.bsky.feed.getFeed", nil, alice.Token, nil); r.Status != 200 {
		t.Fatalf("default route: %d %s", r.Status, r.Body)
	}
	if r := env.Request("GET", "/xrpc/com.example.x", nil, alice.Token, nil, "atproto-proxy", env.Mod.Ref("atproto_labeler")); r.Status != 200 {
		t.Fatalf("header route: %d %s", r.Status, r.Body)
	}
	if got := claims(t, env.AppView.Calls()[0].Token)["aud"]; got != env.AppView.Ref("bsky_appview") {
		t.Errorf("aud %v", got)
	}
}
