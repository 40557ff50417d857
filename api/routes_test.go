package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds/oauthcore"
	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/eventlog/events"
)

// TestRouteTable: every served NSID has exactly one route and so one
// credential policy, and the policies agree with the reference's method
// lists (auth/scope.go): full-access, protected and signup-queued methods
// need a session (or the admin), takendown methods accept a session.
func TestRouteTable(t *testing.T) {
	env := apitest.New(t, func(c *api.Config) { c.Proxy = &proxy.Config{} })
	policies := map[string]string{}
	for _, r := range env.API.RouteTable() {
		if r.Policy == "" {
			t.Errorf("%s %s has no policy", r.Method, r.Path)
		}
		if _, dup := policies[r.Path]; dup {
			t.Errorf("%s is routed twice", r.Path)
		}
		policies[r.Path] = r.Policy
	}
	served := func(nsid string) (string, bool) {
		for path, p := range policies {
			if strings.EqualFold(path, "/xrpc/"+nsid) {
				return p, true
			}
		}
		return "", false
	}
	check := func(list string, nsids []string, allowed ...string) {
		for _, nsid := range nsids {
			if p, ok := served(nsid); ok && !slices.Contains(allowed, p) {
				t.Errorf("%s is in the %s list but routed with policy %s (want one of %v)", nsid, list, p, allowed)
			}
		}
	}
	check("full-access", auth.FullAccessMethods(), "access")
	check("protected", auth.ProtectedMethods(), "access", "admin")
	check("signup-queued", auth.SignupQueuedMethods(), "access")
	check("takendown", auth.TakendownMethods(), "access", "optionalOrAdmin")
	// Procedures change state: each needs credentials, but signup and login.
	public := []string{"com.atproto.server.createAccount", "com.atproto.server.createSession",
		// the account is named and proven by the body (email; code; DID, password and code)
		"com.atproto.server.requestPasswordReset", "com.atproto.server.resetPassword", "com.atproto.server.deleteAccount",
		// a key for an account not here yet (the reference's: public)
		"com.atproto.server.reserveSigningKey"}
	for _, r := range env.API.RouteTable() {
		nsid, xrpcRoute := strings.CutPrefix(r.Path, "/xrpc/")
		if !xrpcRoute {
			continue // the OAuth endpoints and pages: TestOAuthFormsGuarded
		}
		if r.Method == http.MethodPost && !slices.Contains(public, nsid) && (r.Policy == "optional" || r.Policy == "none") {
			t.Errorf("procedure %s is routed with policy %s", nsid, r.Policy)
		}
	}
	for path, p := range policies {
		nsid := strings.TrimPrefix(path, "/xrpc/")
		switch {
		case p == "refresh" && nsid != "com.atproto.server.refreshSession" && nsid != "com.atproto.server.deleteSession":
			t.Errorf("%s takes a refresh token: only refreshSession and deleteSession may", nsid)
		case strings.HasPrefix(nsid, "com.atproto.admin.") && p != "admin":
			t.Errorf("%s is an admin method routed with policy %s", nsid, p)
		}
	}
}

// TestPoliciesEnforced: every route answers a request without credentials
// as its policy says — access and admin routes with a 401 before the
// handler runs — so a route cannot lose its auth silently.
func TestPoliciesEnforced(t *testing.T) {
	env := apitest.New(t, func(c *api.Config) { c.Proxy = &proxy.Config{} })
	user := env.CreateAccount()
	for _, r := range env.API.RouteTable() {
		if !strings.HasPrefix(r.Path, "/xrpc/") || strings.HasSuffix(r.Path, "subscribeRepos") {
			continue
		}
		var body any
		if r.Method == http.MethodPost {
			body = map[string]any{}
		}
		switch r.Policy {
		case "access":
			if got := env.Do(r.Method, r.Path, nil, "", body); got.Status != 401 || got.ErrorName() != "AuthMissing" {
				t.Errorf("%s without credentials: %d %s, want 401 AuthMissing", r.Path, got.Status, got.Body)
			}
		case "admin":
			for _, cred := range []string{"", user.Token, apitest.AdminAuth("wrong")} {
				if got := env.Do(r.Method, r.Path, nil, cred, body); got.Status != 401 {
					t.Errorf("%s with credentials %q: %d %s, want 401", r.Path, cred[:min(len(cred), 10)], got.Status, got.Body)
				}
			}
			// A right password ends the run of wrong ones, so the admin
			// throttle's lockout (ratelimit.AdminMaxFailures in a row)
			// does not answer for the next route.
			if got := env.Do("GET", "/xrpc/com.atproto.admin.getInviteCodes", nil, apitest.AdminAuth(apitest.AdminPassword), nil); got.Status != 200 {
				t.Fatalf("admin with the right password: %d %s", got.Status, got.Body)
			}
		case "optional", "optionalOrAdmin":
			// A bad access token is refused, not ignored.
			if got := env.Do(r.Method, r.Path, nil, "not-a-token", body); got.Status < 400 || got.Status >= 500 {
				t.Errorf("%s with a bad token: %d %s, want a 4xx", r.Path, got.Status, got.Body)
			}
		}
	}
}

// TestOAuthRules: every XRPC route that takes access tokens declares what
// an OAuth token must allow (route() refuses to start otherwise), and the
// methods the reference keeps from app passwords (full access) are kept
// from OAuth clients, or need the matching identity or account permission.
func TestOAuthRules(t *testing.T) {
	env := apitest.New(t, func(c *api.Config) { c.Proxy = &proxy.Config{} })
	full := auth.FullAccessMethods()
	for _, r := range env.API.RouteTable() {
		nsid, ok := strings.CutPrefix(r.Path, "/xrpc/")
		if !ok || r.Policy == "none" || r.Policy == "admin" || r.Policy == "refresh" || r.Policy == "serviceAuthOptional" {
			if r.OAuth != "" {
				t.Errorf("%s takes no access token but declares OAuth rule %q", r.Path, r.OAuth)
			}
			continue
		}
		if r.OAuth == "" {
			t.Errorf("%s (policy %s) declares no OAuth rule", r.Path, r.Policy)
		}
		if slices.ContainsFunc(full, func(m string) bool { return strings.EqualFold(m, nsid) }) &&
			r.OAuth != "never" && !strings.HasPrefix(r.OAuth, "identity:") && r.OAuth != "account:repo?action=manage" {
			t.Errorf("%s is full-access only but OAuth rule %q lets a token call it", nsid, r.OAuth)
		}
	}
}

// TestOAuthPoliciesEnforced: over HTTP, with a DPoP-bound OAuth token
// whose scope is only "atproto", every route answers as its OAuth rule
// says: "never" routes 403 Forbidden, permission routes 403
// ScopeMissingError, the others run their handler.
func TestOAuthPoliciesEnforced(t *testing.T) {
	env := apitest.New(t, func(c *api.Config) { c.Proxy = &proxy.Config{} })
	user := env.CreateAccount()
	tok, key := oauthToken(t, env, user.DID, "atproto")
	nonce := ""
	call := func(method, path string, body any) *apitest.Response {
		for i := 0; ; i++ {
			proof := dpopProof(t, key, method, "http://localhost:2583"+path, nonce, tok)
			var b any
			if body != nil {
				b = body
			}
			r := env.Request(method, path, nil, "", b, "Authorization", "DPoP "+tok, "DPoP", proof)
			if n := r.Header.Get("DPoP-Nonce"); n != "" {
				nonce = n
			}
			if r.ErrorName() == "use_dpop_nonce" && i == 0 {
				continue
			}
			return r
		}
	}
	if r := call("GET", "/xrpc/com.atproto.server.getSession", nil); r.Status != 200 {
		t.Fatalf("getSession with an OAuth token: %d %s", r.Status, r.Body)
	}
	for _, r := range env.API.RouteTable() {
		if !strings.HasPrefix(r.Path, "/xrpc/") || r.OAuth == "" || strings.HasSuffix(r.Path, "subscribeRepos") {
			continue
		}
		var body any
		if r.Method == http.MethodPost {
			body = map[string]any{}
		}
		got := call(r.Method, r.Path, body)
		name := got.ErrorName()
		switch {
		case r.OAuth == "never":
			if got.Status != 403 || name != "Forbidden" {
				t.Errorf("%s (never): %d %s, want 403 Forbidden", r.Path, got.Status, got.Body)
			}
		case r.OAuth == "any" || strings.Contains(r.OAuth, "in the handler") || strings.Contains(r.OAuth, "in the proxy"):
			if got.Status == 401 || got.Status == 403 || strings.HasPrefix(name, "invalid_") || name == "use_dpop_nonce" {
				t.Errorf("%s (%s): %d %s, want the handler's answer", r.Path, r.OAuth, got.Status, got.Body)
			}
		default:
			if got.Status != 403 || name != "ScopeMissingError" {
				t.Errorf("%s (%s): %d %s, want 403 ScopeMissingError", r.Path, r.OAuth, got.Status, got.Body)
			}
		}
	}
}

// oauthToken opens an OAuth session of scope for did straight on the write
// side's log (the authorization server's pages and endpoints are tested in
// api/oauth) and signs its access token, bound to a fresh DPoP key.
func oauthToken(t *testing.T, env *apitest.Env, did syntax.DID, scope string) (string, *atcrypto.PrivateKeyP256) {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey()
	jwk, _ := pub.JWK()
	jkt := (&oauthcore.JWK{Kty: jwk.KeyType, Crv: jwk.Curve, X: jwk.X, Y: jwk.Y}).Thumbprint()
	now := time.Now().UTC()
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	s := &events.OAuthSession{ID: "ses-routes", ClientID: "https://app.example.com/client.json", ClientAuth: events.OAuthClientAuth{Method: "none"},
		Scope: scope, DPoPJKT: jkt, RefreshHash: "unused", TokenID: "tok-routes", CreatedAt: ts(0), ExpiresAt: ts(time.Hour), SessionExpiresAt: ts(time.Hour)}
	seq, err := env.Log.Append(t.Context(), events.Must(did, s))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Runner.CatchUp(t.Context(), seq); err != nil {
		t.Fatal(err)
	}
	c := oauthcore.AccessClaims{Subject: did.String(), ClientID: s.ClientID, Scope: scope, JTI: s.TokenID, SessionID: s.ID,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
	c.Cnf.JKT = jkt
	tok, err := env.PDS.OAuthSigner().Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok, key
}

func dpopProof(t *testing.T, key *atcrypto.PrivateKeyP256, method, htu, nonce, token string) string {
	t.Helper()
	pub, _ := key.PublicKey()
	jwk, _ := pub.JWK()
	sum := sha256.Sum256([]byte(token))
	claims := jwt.MapClaims{"jti": fmt.Sprintf("%d", time.Now().UnixNano()), "htm": method, "htu": htu, "iat": time.Now().Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:])}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	tk := jwt.NewWithClaims(jwt.GetSigningMethod("ES256"), claims)
	tk.Header["typ"] = "dpop+jwt"
	tk.Header["jwk"] = jwk
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
