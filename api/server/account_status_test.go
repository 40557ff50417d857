package server_test

import (
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

func TestDeactivateActivate(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	write := func() *apitest.Response {
		return env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post",
			"record": map[string]any{"text": "x", "createdAt": "2026-11-26T12:00:00.000Z"}})
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.deactivateAccount", nil, a.Token, map[string]any{}); r.Status != 200 {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	if r := write(); r.Status != 400 || r.ErrorName() != "InvalidRequest" {
		t.Fatalf("write while deactivated: %d %s", r.Status, r.Body)
	}
	var s sessionOut
	g := env.Do("GET", "/xrpc/com.atproto.server.getSession", nil, a.Token, nil)
	g.JSON(t, &s)
	if s.Active {
		t.Fatalf("getSession says active: %s", g.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.activateAccount", nil, a.Token, nil); r.Status != 200 {
		t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	if r := write(); r.Status != 200 {
		t.Fatalf("write after activate: %d %s", r.Status, r.Body)
	}
}
