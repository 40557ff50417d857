package server_test

import (
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

func TestAppPasswords(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	r := env.Do("POST", "/xrpc/com.atproto.server.createAppPassword", nil, a.Token, map[string]any{"name": "phone"})
	if r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var ap struct{ Name, Password string }
	r.JSON(t, &ap)
	if len(ap.Password) != 19 {
		t.Fatalf("app password %q", ap.Password)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.createAppPassword", nil, a.Token, map[string]any{"name": "phone"}); r.Status != 400 {
		t.Fatalf("duplicate name: %d", r.Status)
	}
	// Log in with it: an app-password session.
	lr := login(env, a.Handle.String(), ap.Password)
	if lr.Status != 200 {
		t.Fatalf("login with app password: %d %s", lr.Status, lr.Body)
	}
	var s sessionOut
	lr.JSON(t, &s)
	// It can write records...
	w := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, s.AccessJwt, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post",
		"record": map[string]any{"text": "from my phone", "createdAt": "2026-11-26T12:00:00.000Z"}})
	if w.Status != 200 {
		t.Fatalf("write with app password: %d %s", w.Status, w.Body)
	}
	// ...but not manage credentials.
	if r := env.Do("POST", "/xrpc/com.atproto.server.createAppPassword", nil, s.AccessJwt, map[string]any{"name": "evil"}); r.Status < 400 || r.Status >= 500 {
		t.Fatalf("app password minting app passwords: %d %s", r.Status, r.Body)
	}
	lst := env.Do("GET", "/xrpc/com.atproto.server.listAppPasswords", nil, a.Token, nil)
	if lst.Status != 200 || !strings.Contains(string(lst.Body), `"name":"phone"`) || strings.Contains(string(lst.Body), ap.Password) {
		t.Fatalf("list: %d %s", lst.Status, lst.Body)
	}
	// Revoking ends the app password and its sessions.
	if r := env.Do("POST", "/xrpc/com.atproto.server.revokeAppPassword", nil, a.Token, map[string]any{"name": "phone"}); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := login(env, a.Handle.String(), ap.Password); r.Status != 401 {
		t.Fatalf("login after revoke: %d", r.Status)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.refreshSession", nil, s.RefreshJwt, nil); r.Status != 400 {
		t.Fatalf("refresh of a revoked app password session: %d %s", r.Status, r.Body)
	}
}
