package server_test

import (
	"net/url"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
)

func TestAdminDeleteAccount(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	b := env.CreateAccount()
	for _, acct := range []*apitest.Account{a, b} {
		r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, acct.Token, map[string]any{"repo": acct.DID, "collection": "app.bsky.feed.post",
			"record": map[string]any{"text": "bye", "createdAt": "2026-11-26T12:00:00.000Z"}})
		if r.Status != 200 {
			t.Fatalf("write: %d %s", r.Status, r.Body)
		}
	}
	del := func(auth string, did string) *apitest.Response {
		return env.Do("POST", "/xrpc/com.atproto.admin.deleteAccount", nil, auth, map[string]any{"did": did})
	}
	if r := del(apitest.AdminAuth("wrong"), a.DID.String()); r.Status != 401 {
		t.Fatalf("wrong admin password: %d %s", r.Status, r.Body)
	}
	if r := del(a.Token, a.DID.String()); r.Status != 401 {
		t.Fatalf("user token on admin method: %d %s", r.Status, r.Body)
	}
	if r := del(apitest.AdminAuth(apitest.AdminPassword), "did:plc:nobody"); r.Status != 400 {
		t.Fatalf("unknown account: %d %s", r.Status, r.Body)
	}
	if r := del(apitest.AdminAuth(apitest.AdminPassword), a.DID.String()); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	check := func(when string) {
		t.Helper()
		if r := env.Do("GET", "/xrpc/com.atproto.repo.listRecords", url.Values{"repo": {a.DID.String()}, "collection": {"app.bsky.feed.post"}}, "", nil); r.Status != 400 {
			t.Fatalf("%s: deleted repo still listed: %d %s", when, r.Status, r.Body)
		}
		if r := login(env, a.Handle.String(), a.Password); r.Status != 401 {
			t.Fatalf("%s: deleted account can log in: %d", when, r.Status)
		}
		if r := env.Do("GET", "/xrpc/com.atproto.repo.listRecords", url.Values{"repo": {b.DID.String()}, "collection": {"app.bsky.feed.post"}}, "", nil); r.Status != 200 {
			t.Fatalf("%s: other account affected: %d", when, r.Status)
		}
	}
	check("after delete")
	// The log keeps only the deletion event of the account: every earlier
	// seq of it is a tombstone; seqs did not move.
	it, err := env.Log.Iter(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var kept, tombs int
	for it.Next() {
		ev := it.Event()
		switch {
		case ev.Kind == eventlog.KindTombstone:
			tombs++
		case ev.DID == a.DID:
			kept++
			if ev.Kind != eventlog.KindAccount || ev.Account.Status != "deleted" {
				t.Fatalf("seq %d of the deleted account kept: %s", ev.Seq, ev.Kind)
			}
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if kept != 1 || tombs < 6 {
		t.Fatalf("kept %d events of the deleted account, %d tombstones", kept, tombs)
	}
	// Replay from the purged log gives the same state, and the log verifies.
	if err := env.Runner.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("after replay")
	if err := env.Log.Verify(t.Context(), &eventlog.VerifyOptions{Check: commit.NewVerifier().Check}); err != nil {
		t.Fatal(err)
	}
}

func TestAdminInviteCodes(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	admin := apitest.AdminAuth(apitest.AdminPassword)
	r := env.Do("POST", "/xrpc/com.atproto.server.createInviteCode", nil, admin, map[string]any{"useCount": 2})
	if r.Status != 200 {
		t.Fatalf("createInviteCode: %d %s", r.Status, r.Body)
	}
	var one struct{ Code string }
	r.JSON(t, &one)
	for i, h := range []string{"use1.test", "use2.test"} {
		s := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", map[string]any{"handle": h, "email": h + "@example.com", "password": "pw-long-enough", "inviteCode": one.Code})
		if s.Status != 200 {
			t.Fatalf("signup %d: %d %s", i, s.Status, s.Body)
		}
	}
	if s := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", map[string]any{"handle": "use3.test", "email": "u3@example.com", "password": "pw-long-enough", "inviteCode": one.Code}); s.Status != 400 || s.ErrorName() != "InvalidInviteCode" {
		t.Fatalf("third use of a 2-use code: %d %s", s.Status, s.Body)
	}
	r = env.Do("POST", "/xrpc/com.atproto.server.createInviteCodes", nil, admin, map[string]any{"codeCount": 3, "useCount": 1})
	var many struct {
		Codes []struct{ Codes []string } `json:"codes"`
	}
	r.JSON(t, &many)
	if r.Status != 200 || len(many.Codes) != 1 || len(many.Codes[0].Codes) != 3 {
		t.Fatalf("createInviteCodes: %d %s", r.Status, r.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.createInviteCode", nil, "", map[string]any{"useCount": 1}); r.Status != 401 {
		t.Fatalf("without admin: %d", r.Status)
	}
}
