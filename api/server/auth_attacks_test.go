package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/auth"
)

// Every way of presenting the wrong credentials is refused, end to end.
func TestAuthAttacks(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	b := env.CreateAccount()
	clk := env.Clock

	other, err := auth.NewTokens([]byte("some-other-secret"), apitest.Service.DID())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Issue(auth.SessionParams{DID: a.DID, SessionID: auth.NewSessionID(), Scope: auth.ScopeAccess, IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	wrongAud, _ := auth.NewTokens([]byte("apitest-jwt-secret"), "did:web:elsewhere.example")
	elsewhere, err := wrongAud.Issue(auth.SessionParams{DID: a.DID, SessionID: auth.NewSessionID(), Scope: auth.ScopeAccess, IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	forged := a.Token[:len(a.Token)-4] + "AAAA"
	parts := strings.Split(a.Token, ".")
	forgedPayload := parts[0] + "." + strings.ReplaceAll(parts[1], "a", "b") + "." + parts[2]
	// an app password session
	ap := env.Do("POST", "/xrpc/com.atproto.server.createAppPassword", nil, a.Token, map[string]any{"name": "app"})
	var apOut struct{ Password string }
	ap.JSON(t, &apOut)
	var appSess sessionOut
	login(env, a.Handle.String(), apOut.Password).JSON(t, &appSess)

	write := map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": map[string]any{"text": "x", "createdAt": "2026-11-26T12:00:00.000Z"}}
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		status int
	}{
		{"forged signature", "POST", "com.atproto.repo.createRecord", forged, write, 400},
		{"tampered payload", "POST", "com.atproto.repo.createRecord", forgedPayload, write, 400},
		{"wrong secret", "POST", "com.atproto.repo.createRecord", foreign.AccessJwt, write, 400},
		{"wrong audience", "POST", "com.atproto.repo.createRecord", elsewhere.AccessJwt, write, 400},
		{"refresh as access", "POST", "com.atproto.repo.createRecord", a.Refresh, write, 400},
		{"access as refresh", "POST", "com.atproto.server.refreshSession", a.Token, nil, 400},
		{"A writes to B", "POST", "com.atproto.repo.createRecord", b.Token, write, 401},
		{"app password on a privileged method", "POST", "com.atproto.server.createAppPassword", appSess.AccessJwt, map[string]any{"name": "x"}, 400},
		{"basic auth on a user method", "POST", "com.atproto.repo.createRecord", apitest.AdminAuth(apitest.AdminPassword), write, 401},
		{"garbage", "GET", "com.atproto.server.getSession", "x.y.z", nil, 400},
	}
	run := func() {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				head := env.Log.Head()
				r := env.Do(tt.method, "/xrpc/"+tt.path, nil, tt.token, tt.body)
				if r.Status < 400 || r.Status >= 500 || (tt.status != 0 && r.Status != tt.status) {
					t.Fatalf("%d %s, want %d", r.Status, r.Body, tt.status)
				}
				if env.Log.Head() != head {
					t.Fatal("a refused request wrote to the log")
				}
			})
		}
	}
	run()
	// expired: the same valid token, two hours later
	clk.Add(3 * time.Hour)
	if r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, write); r.Status != 400 || r.ErrorName() != "ExpiredToken" {
		t.Fatalf("expired: %d %s", r.Status, r.Body)
	}
	// revoked: logged out refresh token
	if r := env.Do("POST", "/xrpc/com.atproto.server.deleteSession", nil, b.Refresh, nil); r.Status != 200 {
		t.Fatalf("logout: %d", r.Status)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.refreshSession", nil, b.Refresh, nil); r.Status != 400 || r.ErrorName() != "InvalidToken" {
		t.Fatalf("revoked: %d %s", r.Status, r.Body)
	}
}
