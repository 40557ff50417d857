package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/apitest"
)

type sessionOut struct {
	AccessJwt  string `json:"accessJwt"`
	RefreshJwt string `json:"refreshJwt"`
	DID        string `json:"did"`
	Handle     string `json:"handle"`
	Active     bool   `json:"active"`
}

func login(env *apitest.Env, id, pw string) *apitest.Response {
	return env.Do("POST", "/xrpc/com.atproto.server.createSession", nil, "", map[string]any{"identifier": id, "password": pw})
}

func TestCreateSession(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	for _, id := range []string{a.Handle.String(), a.DID.String(), "USER1@example.com"} {
		r := login(env, id, a.Password)
		if r.Status != 200 {
			t.Fatalf("login as %s: %d %s", id, r.Status, r.Body)
		}
		var s sessionOut
		r.JSON(t, &s)
		if s.DID != a.DID.String() || s.AccessJwt == "" || s.RefreshJwt == "" || !s.Active {
			t.Fatalf("session %+v", s)
		}
		g := env.Do("GET", "/xrpc/com.atproto.server.getSession", nil, s.AccessJwt, nil)
		if g.Status != 200 || !strings.Contains(string(g.Body), a.Handle.String()) {
			t.Fatalf("getSession: %d %s", g.Status, g.Body)
		}
	}
	if r := login(env, a.Handle.String(), "wrong"); r.Status != 401 || r.ErrorName() != "AuthenticationRequired" {
		t.Fatalf("wrong password: %d %s", r.Status, r.Body)
	}
	if r := login(env, "nobody.test", "x"); r.Status != 401 || r.ErrorName() != "AuthenticationRequired" {
		t.Fatalf("unknown account: %d %s", r.Status, r.Body)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.server.getSession", nil, "", nil); r.Status != 401 {
		t.Fatalf("getSession without token: %d", r.Status)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.server.getSession", nil, a.Refresh, nil); r.Status != 400 || r.ErrorName() != "InvalidToken" {
		t.Fatalf("refresh token as access: %d %s", r.Status, r.Body)
	}
}

// Five failures lock the identifier out from that IP, even for the right
// password, with the rate-limit headers set.
func TestLoginLockout(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	for i := range 5 {
		if r := login(env, a.Handle.String(), "wrong"); r.Status != 401 {
			t.Fatalf("attempt %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := login(env, a.Handle.String(), a.Password)
	if r.Status != 429 || r.ErrorName() != "RateLimitExceeded" || r.Header.Get("Retry-After") == "" || r.Header.Get("RateLimit-Limit") == "" {
		t.Fatalf("after 5 failures: %d %s %v", r.Status, r.Body, r.Header)
	}
}

func TestRefreshRotation(t *testing.T) {
	env := apitest.New(t)
	clk := env.Clock
	a := env.CreateAccount()
	refresh := func(tok string) *apitest.Response {
		return env.Do("POST", "/xrpc/com.atproto.server.refreshSession", nil, tok, nil)
	}
	r1 := refresh(a.Refresh)
	if r1.Status != 200 {
		t.Fatalf("refresh: %d %s", r1.Status, r1.Body)
	}
	var s1 sessionOut
	r1.JSON(t, &s1)
	if s1.RefreshJwt == a.Refresh {
		t.Fatal("refresh token not rotated")
	}
	// A racing retry within 30 s gets the same successor pair.
	clk.Add(10 * time.Second)
	var again sessionOut
	r2 := refresh(a.Refresh)
	if r2.Status != 200 {
		t.Fatalf("retry: %d %s", r2.Status, r2.Body)
	}
	r2.JSON(t, &again)
	if again.RefreshJwt != s1.RefreshJwt || again.AccessJwt != s1.AccessJwt {
		t.Fatal("retry within the window gave a different pair")
	}
	// The successor works.
	r3 := refresh(s1.RefreshJwt)
	if r3.Status != 200 {
		t.Fatalf("refresh successor: %d %s", r3.Status, r3.Body)
	}
	var s3 sessionOut
	r3.JSON(t, &s3)
	// Reuse of the first token after the window: refused, and the whole
	// chain (s1 and s3) is revoked.
	clk.Add(time.Minute)
	if r := refresh(a.Refresh); r.Status != 400 || r.ErrorName() != "InvalidToken" {
		t.Fatalf("late reuse: %d %s", r.Status, r.Body)
	}
	if r := refresh(s3.RefreshJwt); r.Status != 400 || r.ErrorName() != "InvalidToken" {
		t.Fatalf("chain after theft signal: %d %s", r.Status, r.Body)
	}
	// Access tokens are no refresh tokens.
	if r := refresh(s1.AccessJwt); r.Status != 400 || r.ErrorName() != "InvalidToken" {
		t.Fatalf("access as refresh: %d %s", r.Status, r.Body)
	}
	// Expired access tokens say so.
	clk.Add(3 * time.Hour)
	if r := env.Do("GET", "/xrpc/com.atproto.server.getSession", nil, s1.AccessJwt, nil); r.Status != 400 || r.ErrorName() != "ExpiredToken" {
		t.Fatalf("expired access: %d %s", r.Status, r.Body)
	}
}

func TestDeleteSession(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	if r := env.Do("POST", "/xrpc/com.atproto.server.deleteSession", nil, a.Refresh, nil); r.Status != 200 {
		t.Fatalf("deleteSession: %d %s", r.Status, r.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.refreshSession", nil, a.Refresh, nil); r.Status != 400 || r.ErrorName() != "InvalidToken" {
		t.Fatalf("refresh after logout: %d %s", r.Status, r.Body)
	}
	// replay of the log rebuilds the same session state
	if err := env.Runner.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.refreshSession", nil, a.Refresh, nil); r.Status != 400 {
		t.Fatalf("refresh after logout and replay: %d %s", r.Status, r.Body)
	}
}
