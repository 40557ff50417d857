package server_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
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
	doc, err := env.PDS.PLC.Resolve(context.Background(), did)
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

func TestUpdateHandle(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("inv", 2)
	var acct struct{ AccessJwt, DID string }
	r := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", map[string]any{"handle": "carol.test", "email": "c@example.com", "password": "pw-carol-123", "inviteCode": "inv"})
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	r.JSON(t, &acct)
	other := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", map[string]any{"handle": "dave.test", "email": "d@example.com", "password": "pw-dave-1234", "inviteCode": "inv"})
	if other.Status != 200 {
		t.Fatalf("%d %s", other.Status, other.Body)
	}
	up := func(h string) *apitest.Response {
		return env.Do("POST", "/xrpc/com.atproto.identity.updateHandle", nil, acct.AccessJwt, map[string]any{"handle": h})
	}
	if r := up("caroline.test"); r.Status != 200 {
		t.Fatalf("updateHandle: %d %s", r.Status, r.Body)
	}
	doc, err := env.PDS.PLC.Resolve(context.Background(), syntax.DID(acct.DID))
	if err != nil || len(doc.AlsoKnownAs) == 0 || doc.AlsoKnownAs[0] != "at://caroline.test" {
		t.Fatalf("PLC document after update: %v %v", doc, err)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.identity.resolveHandle", url.Values{"handle": {"caroline.test"}}, "", nil); r.Status != 200 || !strings.Contains(string(r.Body), acct.DID) {
		t.Fatalf("resolve new handle: %d %s", r.Status, r.Body)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.identity.resolveHandle", url.Values{"handle": {"carol.test"}}, "", nil); r.Status != 400 {
		t.Fatalf("old handle still resolves: %d", r.Status)
	}
	if r := up("dave.test"); r.Status != 400 || r.ErrorName() != "HandleNotAvailable" {
		t.Fatalf("taken handle: %d %s", r.Status, r.Body)
	}
	if r := up("carol.example.com"); r.Status != 400 || r.ErrorName() != "UnsupportedDomain" {
		t.Fatalf("foreign domain: %d %s", r.Status, r.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.identity.updateHandle", nil, "", map[string]any{"handle": "x.test"}); r.Status != 401 {
		t.Fatalf("no auth: %d", r.Status)
	}
}

// TestConcurrentSignupsClaim races signups for one handle, one email and
// the last use of an invite: exactly one of each wins, the others get the
// lexicon's error, and the log holds exactly the winners.
func TestConcurrentSignupsClaim(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("many", 100)
	env.CreateInvite("once", 1)
	const n = 8
	race := func(in func(i int) map[string]any) (ok int, errs map[string]int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		errs = map[string]int{}
		for i := range n {
			wg.Go(func() {
				r := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", in(i))
				mu.Lock()
				defer mu.Unlock()
				if r.Status == 200 {
					ok++
				} else {
					errs[r.ErrorName()]++
				}
			})
		}
		wg.Wait()
		return ok, errs
	}
	tests := []struct {
		name string
		in   func(i int) map[string]any
		err  string
	}{
		{"same handle", func(i int) map[string]any {
			return map[string]any{"handle": "same.test", "email": fmt.Sprintf("h%d@example.com", i), "password": "pw-same-123", "inviteCode": "many"}
		}, "HandleNotAvailable"},
		{"same email", func(i int) map[string]any {
			return map[string]any{"handle": fmt.Sprintf("mail%d.test", i), "email": "Same@example.com", "password": "pw-same-123", "inviteCode": "many"}
		}, "InvalidRequest"},
		{"last invite use", func(i int) map[string]any {
			return map[string]any{"handle": fmt.Sprintf("inv%d.test", i), "email": fmt.Sprintf("inv%d@example.com", i), "password": "pw-same-123", "inviteCode": "once"}
		}, "InvalidInviteCode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := env.Accounts.Count(t.Context(), 1000)
			if err != nil {
				t.Fatal(err)
			}
			ok, errs := race(tt.in)
			if ok != 1 || errs[tt.err] != n-1 {
				t.Fatalf("%d succeeded, errors %v; want 1 and %d × %s", ok, errs, n-1, tt.err)
			}
			after, err := env.Accounts.Count(t.Context(), 1000)
			if err != nil {
				t.Fatal(err)
			}
			if after != before+1 {
				t.Fatalf("accounts %d → %d, want one more", before, after)
			}
		})
	}
}
