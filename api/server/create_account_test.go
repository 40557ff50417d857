package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/commit"
)

func TestCreateAccountWithRealPLC(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("invite-1", 1)
	signup := func(in map[string]any) *apitest.Response {
		return env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", in)
	}
	r := signup(map[string]any{"handle": "alice.test", "email": "alice@example.com", "password": "correct horse", "inviteCode": "invite-1"})
	if r.Status != 200 {
		t.Fatalf("createAccount: %d %s", r.Status, r.Body)
	}
	var out struct {
		AccessJwt, RefreshJwt, Handle, DID string
	}
	r.JSON(t, &out)
	if !strings.HasPrefix(out.DID, "did:plc:") || out.Handle != "alice.test" || out.AccessJwt == "" {
		t.Fatalf("output %s", r.Body)
	}
	did := syntax.DID(out.DID)

	// The PLC directory has the DID, pointing at us, with the repo key.
	doc, err := env.Signup.PLC.Resolve(context.Background(), did)
	if err != nil {
		t.Fatal(err)
	}
	ident := doc
	if len(ident.AlsoKnownAs) == 0 || ident.AlsoKnownAs[0] != "at://alice.test" {
		t.Fatalf("alsoKnownAs %v", ident.AlsoKnownAs)
	}
	found := false
	for _, svc := range ident.Service {
		if svc.ServiceEndpoint == apitest.Service.PublicURL() {
			found = true
		}
	}
	if !found {
		t.Fatalf("no PDS service endpoint in %+v", ident.Service)
	}

	// The new account can write right away, and its commits verify under
	// the key the PLC document names.
	w := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, out.AccessJwt, map[string]any{
		"repo": out.DID, "collection": "app.bsky.feed.post", "record": map[string]any{"text": "first!", "createdAt": "2026-11-26T12:00:00.000Z"}})
	if w.Status != 200 {
		t.Fatalf("first post: %d %s", w.Status, w.Body)
	}
	if err := env.Log.Verify(t.Context(), &eventlog.VerifyOptions{Check: commit.NewVerifier().Check}); err != nil {
		t.Fatal(err)
	}
	if r := login(env, "alice.test", "correct horse"); r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}

	tests := []struct {
		name string
		in   map[string]any
		err  string
	}{
		{"invite used up", map[string]any{"handle": "bob.test", "email": "bob@example.com", "password": "pw-bob-123", "inviteCode": "invite-1"}, "InvalidInviteCode"},
		{"no invite", map[string]any{"handle": "bob.test", "email": "bob@example.com", "password": "pw-bob-123"}, "InvalidInviteCode"},
		{"unknown invite", map[string]any{"handle": "bob.test", "email": "bob@example.com", "password": "pw-bob-123", "inviteCode": "nope"}, "InvalidInviteCode"},
		{"handle taken", map[string]any{"handle": "Alice.test", "email": "bob@example.com", "password": "pw-bob-123", "inviteCode": "invite-2"}, "HandleNotAvailable"},
		{"foreign domain", map[string]any{"handle": "bob.example.com", "email": "bob@example.com", "password": "pw-bob-123", "inviteCode": "invite-2"}, "UnsupportedDomain"},
		{"bad handle", map[string]any{"handle": "not a handle", "email": "bob@example.com", "password": "pw-bob-123", "inviteCode": "invite-2"}, "InvalidHandle"},
		{"email taken", map[string]any{"handle": "bob.test", "email": "ALICE@example.com", "password": "pw-bob-123", "inviteCode": "invite-2"}, "InvalidRequest"},
		{"no password", map[string]any{"handle": "bob.test", "email": "bob@example.com", "inviteCode": "invite-2"}, "InvalidRequest"},
	}
	env.CreateInvite("invite-2", 5)
	head := env.Log.Head()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := signup(tt.in); r.Status != 400 || r.ErrorName() != tt.err {
				t.Fatalf("%d %s, want 400 %s", r.Status, r.Body, tt.err)
			}
		})
	}
	if env.Log.Head() != head {
		t.Fatal("a refused signup wrote to the log")
	}
}
