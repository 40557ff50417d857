package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
)

// tokenScope is the scope claim of a JWT (not verified: the server issued
// it).
func tokenScope(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Scope string `json:"scope"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Scope
}

func setTakedown(t *testing.T, env *apitest.Env, did string, applied bool) {
	t.Helper()
	if r := env.Do("POST", "/xrpc/com.atproto.admin.updateSubjectStatus", nil, apitest.AdminAuth(apitest.AdminPassword), map[string]any{
		"subject":  map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": did},
		"takedown": map[string]any{"applied": applied, "ref": "test"},
	}); r.Status != 200 {
		t.Fatalf("takedown %v: %d %s", applied, r.Status, r.Body)
	}
}

// TestTakedownHolds: a taken-down account, with the tokens it held before
// the takedown, can change nothing — not its handle (nor its PLC
// document), app passwords, preferences, records or blobs (401
// AccountTakedown, as the reference's checkTakedown) — and its refresh
// tokens were revoked in the takedown's own append, so none mints a
// session again, not even after the takedown is reversed. createSession
// answers 401 AccountTakedown to the right password unless the client
// sends allowTakendown; then the session has the reference's restricted
// takendown scope. App passwords do not log a taken-down account in.
func TestTakedownHolds(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("td", 2)
	r := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", map[string]any{"handle": "taken.test",
		"email": "taken@example.com", "password": "pw-taken-123", "inviteCode": "td"})
	if r.Status != 200 {
		t.Fatalf("createAccount: %d %s", r.Status, r.Body)
	}
	var acct sessionOut
	r.JSON(t, &acct)
	did := syntax.DID(acct.DID)
	r = env.Do("POST", "/xrpc/com.atproto.server.createAppPassword", nil, acct.AccessJwt, map[string]any{"name": "before"})
	var ap struct{ Password string }
	r.JSON(t, &ap)
	if r.Status != 200 || ap.Password == "" {
		t.Fatalf("createAppPassword: %d %s", r.Status, r.Body)
	}
	second := login(env, "taken.test", "pw-taken-123")
	var sess2 sessionOut
	second.JSON(t, &sess2)

	head := env.Log.Head()
	setTakedown(t, env, acct.DID, true)

	// The takedown (its ref), the #account event and the revocation of
	// every session are one append.
	it, err := env.Log.Iter(t.Context(), head)
	if err != nil {
		t.Fatal(err)
	}
	var evs []*eventlog.Event
	for it.Next() {
		evs = append(evs, it.Event())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Kind != eventlog.KindPrivate || evs[0].Private.Type != events.TypeAccountTakedown ||
		evs[1].Kind != eventlog.KindAccount || evs[1].Account.Status != "takendown" || evs[2].Kind != eventlog.KindPrivate {
		t.Fatalf("takedown appended %d events: %+v", len(evs), evs)
	}
	var rev events.SessionRevoked
	if evs[2].Private.Type != events.TypeSessionRevoked || events.Unmarshal(evs[2].Private.Data, &rev) != nil || rev.ID != "" || evs[2].DID != did {
		t.Fatalf("third event of the takedown: %+v", evs[2].Private)
	}
	if evs[1].Seq != evs[0].Seq+1 || evs[2].Seq != evs[1].Seq+1 {
		t.Fatalf("seqs %d, %d, %d", evs[0].Seq, evs[1].Seq, evs[2].Seq)
	}

	tok := acct.AccessJwt // issued before the takedown, full access
	takedown := func(what string, r *apitest.Response) {
		t.Helper()
		if r.Status != 401 || r.ErrorName() != "AccountTakedown" {
			t.Errorf("%s with a pre-takedown token: %d %s, want 401 AccountTakedown", what, r.Status, r.Body)
		}
	}
	takedown("updateHandle", env.Do("POST", "/xrpc/com.atproto.identity.updateHandle", nil, tok, map[string]any{"handle": "escaped.test"}))
	takedown("createAppPassword", env.Do("POST", "/xrpc/com.atproto.server.createAppPassword", nil, tok, map[string]any{"name": "after"}))
	takedown("putPreferences", env.Do("POST", "/xrpc/app.bsky.actor.putPreferences", nil, tok, map[string]any{"preferences": []any{}}))
	takedown("createRecord", env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, tok, map[string]any{"repo": acct.DID,
		"collection": "app.bsky.feed.post", "record": map[string]any{"text": "x", "createdAt": "2026-11-26T12:00:00.000Z"}}))
	takedown("uploadBlob", env.Request("POST", "/xrpc/com.atproto.repo.uploadBlob", nil, tok, []byte("hello"), "Content-Type", "text/plain"))
	takedown("requestEmailConfirmation", env.Do("POST", "/xrpc/com.atproto.server.requestEmailConfirmation", nil, tok, nil))
	takedown("requestEmailUpdate", env.Do("POST", "/xrpc/com.atproto.server.requestEmailUpdate", nil, tok, nil))
	takedown("updateEmail", env.Do("POST", "/xrpc/com.atproto.server.updateEmail", nil, tok, map[string]any{"email": "moved@example.com"}))
	takedown("requestAccountDelete", env.Do("POST", "/xrpc/com.atproto.server.requestAccountDelete", nil, tok, nil))
	takedown("importRepo", env.Request("POST", "/xrpc/com.atproto.repo.importRepo", nil, tok, []byte("not a car"), "Content-Type", "application/vnd.ipld.car"))
	doc, err := env.PDS.PLC.Resolve(context.Background(), did)
	if err != nil || len(doc.AlsoKnownAs) == 0 || doc.AlsoKnownAs[0] != "at://taken.test" {
		t.Fatalf("PLC document after the refused handle change: %v %v", doc, err)
	}
	if a, err := env.Accounts.Get(t.Context(), did); err != nil || a.Handle != "taken.test" {
		t.Fatalf("account after the refused handle change: %+v %v", a, err)
	}
	aps, err := env.Accounts.AppPasswords(t.Context(), did)
	if err != nil || len(aps) != 1 {
		t.Fatalf("app passwords after the takedown: %d %v", len(aps), err)
	}

	// Refresh tokens mint nothing.
	for _, rt := range []string{acct.RefreshJwt, sess2.RefreshJwt} {
		if r := env.Do("POST", "/xrpc/com.atproto.server.refreshSession", nil, rt, nil); r.Status != 401 || r.ErrorName() != "AccountTakedown" {
			t.Errorf("refreshSession while taken down: %d %s, want 401 AccountTakedown", r.Status, r.Body)
		}
	}

	// createSession: the right password is told of the takedown; the
	// client that asks gets the restricted scope; app passwords never.
	if r := login(env, "taken.test", "pw-taken-123"); r.Status != 401 || r.ErrorName() != "AccountTakedown" {
		t.Errorf("createSession of a taken-down account: %d %s, want 401 AccountTakedown", r.Status, r.Body)
	}
	if r := login(env, "taken.test", "wrong-password"); r.Status != 401 || r.ErrorName() != "AuthenticationRequired" {
		t.Errorf("wrong password of a taken-down account: %d %s, want 401 AuthenticationRequired", r.Status, r.Body)
	}
	allow := func(pw string) *apitest.Response {
		return env.Do("POST", "/xrpc/com.atproto.server.createSession", nil, "", map[string]any{"identifier": "taken.test", "password": pw, "allowTakendown": true})
	}
	if r := allow(ap.Password); r.Status != 401 || r.ErrorName() != "AuthenticationRequired" {
		t.Errorf("app password of a taken-down account: %d %s, want 401 AuthenticationRequired", r.Status, r.Body)
	}
	r = allow("pw-taken-123")
	var td sessionOut
	r.JSON(t, &td)
	if r.Status != 200 || tokenScope(t, td.AccessJwt) != "com.atproto.takendown" {
		t.Fatalf("allowTakendown: %d %s", r.Status, r.Body)
	}
	if r := env.Do("GET", "/xrpc/app.bsky.actor.getPreferences", nil, td.AccessJwt, nil); r.Status != 200 {
		t.Errorf("takendown session reading its preferences: %d %s", r.Status, r.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, td.AccessJwt, map[string]any{"repo": acct.DID,
		"collection": "app.bsky.feed.post", "record": map[string]any{"text": "x", "createdAt": "2026-11-26T12:00:00.000Z"}}); r.Status < 400 || r.Status >= 500 {
		t.Errorf("takendown session writing: %d %s", r.Status, r.Body)
	}

	// Reversed: the account works again, but the revoked refresh tokens
	// stay revoked.
	setTakedown(t, env, acct.DID, false)
	for _, rt := range []string{acct.RefreshJwt, sess2.RefreshJwt} {
		if r := env.Do("POST", "/xrpc/com.atproto.server.refreshSession", nil, rt, nil); r.Status != 400 {
			t.Errorf("refreshSession with a token revoked at takedown: %d %s", r.Status, r.Body)
		}
	}
	if r := login(env, "taken.test", "pw-taken-123"); r.Status != 200 {
		t.Errorf("login after the reversal: %d %s", r.Status, r.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.identity.updateHandle", nil, tok, map[string]any{"handle": "back.test"}); r.Status != 200 {
		t.Errorf("updateHandle after the reversal: %d %s", r.Status, r.Body)
	}
}

// TestDeactivatedWrites: record writes by a deactivated account answer 401
// AccountDeactivated (the reference's checkDeactivated; the Bluesky app
// shows its reactivation screen on that name). Its uploads are accepted
// (migration brings blobs before activation), as the reference's.
func TestDeactivatedWrites(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	if r := env.Do("POST", "/xrpc/com.atproto.server.deactivateAccount", nil, a.Token, map[string]any{}); r.Status != 200 {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	rec := map[string]any{"text": "x", "createdAt": "2026-11-26T12:00:00.000Z"}
	for what, r := range map[string]*apitest.Response{
		"createRecord": env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": rec}),
		"putRecord": env.Do("POST", "/xrpc/com.atproto.repo.putRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post",
			"rkey": "3kabcdefghij2", "record": rec}),
		"applyWrites": env.Do("POST", "/xrpc/com.atproto.repo.applyWrites", nil, a.Token, map[string]any{"repo": a.DID, "writes": []any{
			map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": rec}}}),
	} {
		if r.Status != 401 || r.ErrorName() != "AccountDeactivated" {
			t.Errorf("%s while deactivated: %d %s, want 401 AccountDeactivated", what, r.Status, r.Body)
		}
	}
	if r := env.Request("POST", "/xrpc/com.atproto.repo.uploadBlob", nil, a.Token, []byte("hello"), "Content-Type", "text/plain"); r.Status != 200 {
		t.Errorf("uploadBlob while deactivated: %d %s", r.Status, r.Body)
	}
}
