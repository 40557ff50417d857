package server_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
)

var adminAuth = apitest.AdminAuth(apitest.AdminPassword)

type signedUp struct {
	DID, Handle, AccessJwt, RefreshJwt string
	Password, Email                    string
}

// signup creates an account through createAccount (registered with the
// env's real PLC directory).
func signup(t *testing.T, env *apitest.Env, handle, invite string) *signedUp {
	t.Helper()
	s := &signedUp{Password: "pw-" + handle, Email: strings.TrimSuffix(handle, ".test") + "@example.com"}
	r := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "",
		map[string]any{"handle": handle, "email": s.Email, "password": s.Password, "inviteCode": invite})
	want(t, r, 200, "")
	r.JSON(t, s)
	return s
}

type inviteView struct {
	Code       string `json:"code"`
	Available  int    `json:"available"`
	Disabled   bool   `json:"disabled"`
	ForAccount string `json:"forAccount"`
	CreatedBy  string `json:"createdBy"`
	CreatedAt  string `json:"createdAt"`
	Uses       []struct {
		UsedBy string `json:"usedBy"`
		UsedAt string `json:"usedAt"`
	} `json:"uses"`
}

type accountView struct {
	DID              string       `json:"did"`
	Handle           string       `json:"handle"`
	Email            string       `json:"email"`
	IndexedAt        string       `json:"indexedAt"`
	EmailConfirmedAt string       `json:"emailConfirmedAt"`
	InvitedBy        *inviteView  `json:"invitedBy"`
	Invites          []inviteView `json:"invites"`
	InvitesDisabled  bool         `json:"invitesDisabled"`
	DeactivatedAt    string       `json:"deactivatedAt"`
}

func accountInfo(t *testing.T, env *apitest.Env, did string) accountView {
	t.Helper()
	r := env.Do("GET", "/xrpc/com.atproto.admin.getAccountInfo", url.Values{"did": {did}}, adminAuth, nil)
	want(t, r, 200, "")
	var v accountView
	r.JSON(t, &v)
	return v
}

func isDatetime(s string) bool {
	_, err := syntax.ParseDatetime(s)
	return err == nil
}

// TestAdminAccountInfo: getAccountInfo(s) show what the reference's
// formatAccountInfo shows — identity, email and its confirmation, the code
// the account signed up with (and its uses), its own codes, the invite
// policy and the deactivation time — for any account, deactivated ones
// included; unknown DIDs are NotFound (getAccountInfo) or left out
// (getAccountInfos).
func TestAdminAccountInfo(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("inv-a", 2)
	a := signup(t, env, "alice.test", "inv-a")
	b := signup(t, env, "bob.test", "inv-a")
	r := post(env, "com.atproto.server.createInviteCodes", adminAuth, map[string]any{"codeCount": 2, "useCount": 3, "forAccounts": []string{a.DID}})
	want(t, r, 200, "")

	v := accountInfo(t, env, a.DID)
	if v.DID != a.DID || v.Handle != "alice.test" || v.Email != a.Email || !isDatetime(v.IndexedAt) || v.EmailConfirmedAt != "" ||
		v.InvitesDisabled || v.DeactivatedAt != "" {
		t.Fatalf("account view %+v", v)
	}
	if v.InvitedBy == nil || v.InvitedBy.Code != "inv-a" || v.InvitedBy.Available != 2 || len(v.InvitedBy.Uses) != 2 ||
		v.InvitedBy.Uses[0].UsedBy != b.DID || v.InvitedBy.Uses[1].UsedBy != a.DID || !isDatetime(v.InvitedBy.Uses[0].UsedAt) {
		t.Fatalf("invitedBy %+v (uses newest first)", v.InvitedBy)
	}
	if len(v.Invites) != 2 || v.Invites[0].ForAccount != a.DID || v.Invites[0].Available != 3 || v.Invites[0].CreatedBy != "admin" || len(v.Invites[0].Uses) != 0 {
		t.Fatalf("own invites %+v", v.Invites)
	}
	// The raw JSON has the lexicon's required fields even when empty.
	raw := env.Do("GET", "/xrpc/com.atproto.admin.getAccountInfo", url.Values{"did": {b.DID}}, adminAuth, nil)
	for _, f := range []string{`"invites":[]`, `"invitesDisabled":false`, `"indexedAt":"`} {
		if !strings.Contains(string(raw.Body), f) {
			t.Fatalf("getAccountInfo of bob lacks %s: %s", f, raw.Body)
		}
	}

	want(t, post(env, "com.atproto.server.deactivateAccount", b.AccessJwt, map[string]any{}), 200, "")
	if v := accountInfo(t, env, b.DID); !isDatetime(v.DeactivatedAt) {
		t.Fatalf("deactivated account: deactivatedAt %q", v.DeactivatedAt)
	}
	want(t, post(env, "com.atproto.server.activateAccount", b.AccessJwt, map[string]any{}), 200, "")
	if v := accountInfo(t, env, b.DID); v.DeactivatedAt != "" {
		t.Fatalf("activated account: deactivatedAt %q", v.DeactivatedAt)
	}

	r = env.Do("GET", "/xrpc/com.atproto.admin.getAccountInfo", url.Values{"did": {"did:plc:nobodyhereatall00000000"}}, adminAuth, nil)
	want(t, r, 400, "NotFound")
	r = env.Do("GET", "/xrpc/com.atproto.admin.getAccountInfos", url.Values{"dids": {b.DID, "did:plc:nobodyhereatall00000000", a.DID, b.DID}}, adminAuth, nil)
	want(t, r, 200, "")
	var infos struct{ Infos []accountView }
	r.JSON(t, &infos)
	if len(infos.Infos) != 2 || infos.Infos[0].DID != b.DID || infos.Infos[1].DID != a.DID {
		t.Fatalf("getAccountInfos: %s", r.Body)
	}
	want(t, env.Do("GET", "/xrpc/com.atproto.admin.getAccountInfos", nil, adminAuth, nil), 400, "InvalidRequest")
	want(t, env.Do("GET", "/xrpc/com.atproto.admin.getAccountInfo", url.Values{"did": {a.DID}}, a.AccessJwt, nil), 401, "")

	// Replayed from the log, the admin state is the same.
	before := accountInfo(t, env, a.DID)
	if err := env.Runner.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := accountInfo(t, env, a.DID); after.InvitedBy.Uses[0] != before.InvitedBy.Uses[0] || after.IndexedAt != before.IndexedAt {
		t.Fatalf("after replay %+v, before %+v", after, before)
	}
}

// TestAdminInvitePolicy: disable/enableAccountInvites, disableInviteCodes
// by code and by account (never the admin's), getInviteCodes in both sort
// orders with the reference's cursors, and the owner's
// getAccountInviteCodes.
func TestAdminInvitePolicy(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("inv-start", 5)
	a := signup(t, env, "alice.test", "inv-start")
	signup(t, env, "bob.test", "inv-start")
	var made struct {
		Codes []struct{ Codes []string } `json:"codes"`
	}
	r := post(env, "com.atproto.server.createInviteCodes", adminAuth, map[string]any{"codeCount": 3, "useCount": 1, "forAccounts": []string{a.DID}})
	want(t, r, 200, "")
	r.JSON(t, &made)
	own := made.Codes[0].Codes

	codes := func(tok string, q url.Values) []inviteView {
		t.Helper()
		r := env.Do("GET", "/xrpc/com.atproto.server.getAccountInviteCodes", q, tok, nil)
		want(t, r, 200, "")
		var out struct{ Codes []inviteView }
		r.JSON(t, &out)
		return out.Codes
	}
	if got := codes(a.AccessJwt, nil); len(got) != 3 {
		t.Fatalf("alice's codes: %+v", got)
	}
	want(t, env.Do("GET", "/xrpc/com.atproto.server.getAccountInviteCodes", nil, "", nil), 401, "")

	want(t, post(env, "com.atproto.admin.disableAccountInvites", adminAuth, map[string]any{"account": a.DID, "note": "spam"}), 200, "")
	if !accountInfo(t, env, a.DID).InvitesDisabled {
		t.Fatal("invites not disabled")
	}
	want(t, post(env, "com.atproto.admin.enableAccountInvites", adminAuth, map[string]any{"account": a.DID}), 200, "")
	if accountInfo(t, env, a.DID).InvitesDisabled {
		t.Fatal("invites not enabled again")
	}
	want(t, post(env, "com.atproto.admin.disableAccountInvites", adminAuth, map[string]any{"account": "did:plc:nobodyhereatall00000000"}), 400, "AccountNotFound")

	want(t, post(env, "com.atproto.admin.disableInviteCodes", adminAuth, map[string]any{"codes": []string{own[0]}}), 200, "")
	if got := codes(a.AccessJwt, nil); len(got) != 2 {
		t.Fatalf("after disabling one code: %+v", got)
	}
	want(t, post(env, "com.atproto.admin.disableInviteCodes", adminAuth, map[string]any{"accounts": []string{"admin"}}), 400, "InvalidRequest")
	want(t, post(env, "com.atproto.admin.disableInviteCodes", adminAuth, map[string]any{"accounts": []string{a.DID}}), 200, "")
	if got := codes(a.AccessJwt, nil); len(got) != 0 {
		t.Fatalf("after disabling the account's codes: %+v", got)
	}
	r = env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", map[string]any{"handle": "carol.test", "email": "carol@example.com", "password": "pw-carol-1", "inviteCode": own[1]})
	want(t, r, 400, "InvalidInviteCode")

	// getInviteCodes: every code, paged; "usage" puts the used one first.
	var all []inviteView
	for cursor := ""; ; {
		q := url.Values{"limit": {"2"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := env.Do("GET", "/xrpc/com.atproto.admin.getInviteCodes", q, adminAuth, nil)
		want(t, r, 200, "")
		var page struct {
			Cursor string
			Codes  []inviteView
		}
		r.JSON(t, &page)
		all = append(all, page.Codes...)
		if len(page.Codes) == 0 {
			break
		}
		if !strings.Contains(page.Cursor, "::") {
			t.Fatalf("cursor %q", page.Cursor)
		}
		cursor = page.Cursor
	}
	if len(all) != 4 {
		t.Fatalf("getInviteCodes paged through %d codes, want 4: %+v", len(all), all)
	}
	r = env.Do("GET", "/xrpc/com.atproto.admin.getInviteCodes", url.Values{"sort": {"usage"}, "limit": {"1"}}, adminAuth, nil)
	want(t, r, 200, "")
	var top struct{ Codes []inviteView }
	r.JSON(t, &top)
	if len(top.Codes) != 1 || top.Codes[0].Code != "inv-start" || len(top.Codes[0].Uses) != 2 {
		t.Fatalf("most used: %s", r.Body)
	}
	want(t, env.Do("GET", "/xrpc/com.atproto.admin.getInviteCodes", url.Values{"sort": {"oldest"}}, adminAuth, nil), 400, "InvalidRequest")
	want(t, env.Do("GET", "/xrpc/com.atproto.admin.getInviteCodes", url.Values{"cursor": {"garbage"}}, adminAuth, nil), 400, "InvalidRequest")
}

// TestAdminUpdateAccount: the operator sets an account's handle (any valid
// one: the PLC document follows), email (unconfirmed, unique) and password
// (every session ends).
func TestAdminUpdateAccount(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("inv", 3)
	a := signup(t, env, "alice.test", "inv")
	b := signup(t, env, "bob.test", "inv")
	ctx := context.Background()

	for _, h := range []string{"alicia.test", "alice.example.org"} {
		want(t, post(env, "com.atproto.admin.updateAccountHandle", adminAuth, map[string]any{"did": a.DID, "handle": h}), 200, "")
		doc, err := env.PDS.PLC.Resolve(ctx, syntax.DID(a.DID))
		if err != nil || len(doc.AlsoKnownAs) == 0 || doc.AlsoKnownAs[0] != "at://"+h {
			t.Fatalf("PLC document after admin update to %s: %+v %v", h, doc, err)
		}
		if v := accountInfo(t, env, a.DID); v.Handle != h {
			t.Fatalf("handle %s, want %s", v.Handle, h)
		}
	}
	want(t, post(env, "com.atproto.admin.updateAccountHandle", adminAuth, map[string]any{"did": a.DID, "handle": "bob.test"}), 400, "HandleNotAvailable")
	want(t, post(env, "com.atproto.admin.updateAccountHandle", adminAuth, map[string]any{"did": a.DID, "handle": "not a handle"}), 400, "")
	want(t, post(env, "com.atproto.admin.updateAccountHandle", adminAuth, map[string]any{"did": a.DID, "handle": "alice.local"}), 400, "InvalidHandle")

	want(t, post(env, "com.atproto.admin.updateAccountEmail", adminAuth, map[string]any{"account": a.DID, "email": b.Email}), 400, "InvalidRequest")
	want(t, post(env, "com.atproto.admin.updateAccountEmail", adminAuth, map[string]any{"account": "did:plc:nobodyhereatall00000000", "email": "x@example.com"}), 400, "InvalidRequest")
	want(t, post(env, "com.atproto.admin.updateAccountEmail", adminAuth, map[string]any{"account": "bob.test", "email": "robert@example.com"}), 200, "")
	if v := accountInfo(t, env, b.DID); v.Email != "robert@example.com" || v.EmailConfirmedAt != "" {
		t.Fatalf("email after admin update: %+v", v)
	}

	want(t, post(env, "com.atproto.admin.updateAccountPassword", adminAuth, map[string]any{"did": b.DID, "password": strings.Repeat("x", 257)}), 400, "InvalidRequest")
	want(t, post(env, "com.atproto.admin.updateAccountPassword", adminAuth, map[string]any{"did": b.DID, "password": "new-password-1"}), 200, "")
	want(t, env.Do("POST", "/xrpc/com.atproto.server.refreshSession", nil, b.RefreshJwt, nil), 400, "")
	if r := login(env, "bob.test", b.Password); r.Status != 401 {
		t.Fatalf("old password still logs in: %d", r.Status)
	}
	if r := login(env, "bob.test", "new-password-1"); r.Status != 200 {
		t.Fatalf("new password: %d %s", r.Status, r.Body)
	}
}
