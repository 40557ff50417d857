package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/proxy"
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
		nsid := strings.TrimPrefix(r.Path, "/xrpc/")
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
