package sync_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/eventlog"
)

// statusEnv has one account in each hosting state.
type statusEnv struct {
	env                                              *apitest.Env
	active, deactivated, takendown, suspended, other *apitest.Account
	deleted                                          *apitest.Account
	commits                                          map[syntax.DID]string // head commit CID before any status change
	unknown                                          syntax.DID
}

func newStatusEnv(t *testing.T) *statusEnv {
	t.Helper()
	env := apitest.New(t)
	s := &statusEnv{env: env, commits: map[syntax.DID]string{}, unknown: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}
	admin := apitest.AdminAuth(apitest.AdminPassword)
	for _, p := range []**apitest.Account{&s.active, &s.deactivated, &s.takendown, &s.suspended, &s.deleted, &s.other} {
		a := env.CreateAccount()
		*p = a
		s.commits[a.DID] = applyWrites(t, env, a, createW("app.bsky.feed.post", rk(1), post("hello"))).CID
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.deactivateAccount", nil, s.deactivated.Token, map[string]any{}); r.Status != 200 {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.admin.updateSubjectStatus", nil, admin, map[string]any{
		"subject":  map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": s.takendown.DID},
		"takedown": map[string]any{"applied": true, "ref": "test"},
	}); r.Status != 200 {
		t.Fatalf("takedown: %d %s", r.Status, r.Body)
	}
	// Nothing in the API suspends an account yet: the event is what would.
	ctx := context.Background()
	seq, err := env.Log.Append(ctx, &eventlog.Event{Kind: eventlog.KindAccount, DID: s.suspended.DID,
		Account: &eventlog.Account{Active: false, Status: "suspended"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Runner.CatchUp(ctx, seq); err != nil {
		t.Fatal(err)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.admin.deleteAccount", nil, admin, map[string]any{"did": s.deleted.DID}); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	return s
}

// One account in each hosting state, seen by every read method.
func TestRepoStatus(t *testing.T) {
	s := newStatusEnv(t)
	t.Run("refusals", func(t *testing.T) { testRefusals(t, s) })
	t.Run("reported", func(t *testing.T) { testReported(t, s) })
}

// The read methods refuse repos that are not active with the lexicon's
// error for the status (400), except to their owner and the admin; a
// deleted or unknown repo is RepoNotFound for everyone; basic credentials
// that are not the admin's are refused; another user is nobody special.
func testRefusals(t *testing.T, s *statusEnv) {
	env := s.env
	admin := apitest.AdminAuth(apitest.AdminPassword)
	methods := map[string]func(did syntax.DID) url.Values{
		"getRepo":         func(did syntax.DID) url.Values { return q("did", did.String()) },
		"getLatestCommit": func(did syntax.DID) url.Values { return q("did", did.String()) },
		"getRecord": func(did syntax.DID) url.Values {
			return q("did", did.String(), "collection", "app.bsky.feed.post", "rkey", rk(1))
		},
		"getBlocks": func(did syntax.DID) url.Values {
			c := s.commits[did]
			if c == "" {
				c = s.commits[s.active.DID]
			}
			return q("did", did.String(), "cids", c)
		},
	}
	type who struct {
		name  string
		token func(a *apitest.Account) string
	}
	anon := who{"anonymous", func(*apitest.Account) string { return "" }}
	owner := who{"owner", func(a *apitest.Account) string { return a.Token }}
	other := who{"other user", func(*apitest.Account) string { return s.other.Token }}
	adm := who{"admin", func(*apitest.Account) string { return admin }}
	badAdmin := who{"wrong admin password", func(*apitest.Account) string { return apitest.AdminAuth("not-the-password") }}
	tests := []struct {
		repo     *apitest.Account
		did      syntax.DID // when repo is nil
		refused  string     // error name for anonymous and other users; "" served
		privOK   bool       // owner and admin served
		privSkip bool       // the owner cannot authenticate (deleted)
	}{
		{repo: s.active, refused: "", privOK: true},
		{repo: s.deactivated, refused: "RepoDeactivated", privOK: true},
		{repo: s.takendown, refused: "RepoTakendown", privOK: true},
		{repo: s.suspended, refused: "RepoSuspended", privOK: true},
		{repo: s.deleted, refused: "RepoNotFound", privOK: false, privSkip: true},
		{did: s.unknown, refused: "RepoNotFound", privOK: false, privSkip: true},
	}
	for _, tt := range tests {
		did := tt.did
		if tt.repo != nil {
			did = tt.repo.DID
		}
		for m, params := range methods {
			check := func(w who) {
				t.Helper()
				tok := ""
				if tt.repo != nil || w.name != "owner" {
					tok = w.token(tt.repo)
				}
				r := get(env, m, params(did), tok)
				served := tt.refused == ""
				if w.name == "owner" || w.name == "admin" {
					served = tt.privOK
				}
				switch {
				case w.name == "wrong admin password":
					errIs(t, r, 401, "AuthRequired")
				case served && r.Status != 200:
					t.Fatalf("%s %s as %s: %d %s, want 200", m, did, w.name, r.Status, r.Body)
				case !served:
					errIs(t, r, 400, tt.refused, did.String())
				}
			}
			check(anon)
			check(other)
			check(adm)
			check(badAdmin)
			if !tt.privSkip {
				check(owner)
			}
		}
	}
}

// getRepoStatus reports every hosted repo's status (rev only when active)
// without refusing; listRepos lists them all with their status, and
// neither knows a deleted repo.
func testReported(t *testing.T, s *statusEnv) {
	env := s.env
	type status struct {
		DID    string `json:"did"`
		Active bool   `json:"active"`
		Status string `json:"status"`
		Rev    string `json:"rev"`
	}
	ctx := context.Background()
	for a, want := range map[*apitest.Account]status{
		s.active:      {Active: true},
		s.deactivated: {Status: "deactivated"},
		s.takendown:   {Status: "takendown"},
		s.suspended:   {Status: "suspended"},
	} {
		want.DID = a.DID.String()
		if want.Active {
			head, err := env.Log.RepoHead(ctx, a.DID)
			if err != nil {
				t.Fatal(err)
			}
			want.Rev = head.Rev.String()
		}
		var got status
		r := get(env, "getRepoStatus", q("did", a.DID.String()), "")
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", a.DID, r.Status, r.Body)
		}
		r.JSON(t, &got)
		if got != want {
			t.Fatalf("getRepoStatus %s: %+v, want %+v", a.DID, got, want)
		}
	}
	errIs(t, get(env, "getRepoStatus", q("did", s.deleted.DID.String()), ""), 400, "RepoNotFound")
	errIs(t, get(env, "getRepoStatus", q("did", s.unknown.String()), ""), 400, "RepoNotFound")

	var page struct {
		Cursor string `json:"cursor"`
		Repos  []struct {
			DID    string `json:"did"`
			Head   string `json:"head"`
			Rev    string `json:"rev"`
			Active *bool  `json:"active"`
			Status string `json:"status"`
		} `json:"repos"`
	}
	get(env, "listRepos", nil, "").JSON(t, &page)
	got := map[string]string{}
	for _, r := range page.Repos {
		if r.Active == nil {
			t.Fatalf("%s: no active field", r.DID)
		}
		st := r.Status
		if *r.Active {
			st = "active"
		}
		got[r.DID] = st
	}
	want := map[string]string{s.active.DID.String(): "active", s.other.DID.String(): "active", s.deactivated.DID.String(): "deactivated",
		s.takendown.DID.String(): "takendown", s.suspended.DID.String(): "suspended"}
	if len(got) != len(want) || page.Cursor != "" {
		t.Fatalf("listRepos %+v, want %v", page, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("listRepos %s: %q, want %q", k, got[k], v)
		}
	}
}
