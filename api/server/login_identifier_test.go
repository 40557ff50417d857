package server_test

import (
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

// TestLoginIdentifierBounded: createSession refuses, with 400 before any
// limiter sees it, an identifier longer than a handle (253), an email (254)
// or a DID (2048) can be — so however many such requests come, none is
// remembered by the throttle (none locks anything out, none is answered
// 429) — and a password over the reference's 512 characters with its 401.
// Identifiers at the limits are looked up as usual; createAccount takes
// no email login would refuse.
func TestLoginIdentifierBounded(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	long := map[string]string{
		"handle": strings.Repeat("a", 250) + ".test",
		"email":  strings.Repeat("e", 245) + "@example.com",
		"did":    "did:plc:" + strings.Repeat("z", 2041),
		"huge":   strings.Repeat("x", 100<<10),
	}
	for kind, id := range long {
		for i := range 8 {
			if r := login(env, id, "whatever-password"); r.Status != 400 || r.ErrorName() != "InvalidRequest" {
				t.Fatalf("%s identifier of %d bytes, attempt %d: %d %s, want 400 InvalidRequest", kind, len(id), i, r.Status, r.Body)
			}
		}
	}
	atLimit := map[string]string{
		"handle": strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 56) + ".test",
		"email":  strings.Repeat("e", 242) + "@example.com",
		"did":    "did:plc:" + strings.Repeat("z", 2040),
	}
	for kind, id := range atLimit {
		if r := login(env, id, "whatever-password"); r.Status != 401 || r.ErrorName() != "AuthenticationRequired" {
			t.Errorf("%s identifier of %d bytes: %d %s, want 401 AuthenticationRequired", kind, len(id), r.Status, r.Body)
		}
	}
	if r := login(env, a.Handle.String(), strings.Repeat("p", 513)); r.Status != 401 || !strings.Contains(r.Message(), "Password too long") {
		t.Errorf("a 513-character password: %d %s, want 401 Password too long", r.Status, r.Body)
	}
	// No account can be made with an email login would refuse.
	if r := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", map[string]any{"handle": "longmail.test",
		"email": long["email"], "password": "pw-long-mail-1"}); r.Status != 400 || r.ErrorName() != "InvalidRequest" {
		t.Errorf("createAccount with a %d-byte email: %d %s", len(long["email"]), r.Status, r.Body)
	}
	if r := login(env, a.Handle.String(), a.Password); r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
}
