package repo_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/eventlog"
)

// TestReadsOfInactiveRepos: com.atproto.repo.getRecord, listRecords,
// describeRepo and identity.resolveHandle serve a repo that is not active
// (taken down, deactivated, suspended) only to its owner and the admin, as
// the sync methods do, with the reference's answers to anyone else:
// getRecord RecordNotFound, listRecords the unknown repo's InvalidRequest
// (its getDidForActor does not see inactive accounts), describeRepo the
// status's error (assertRepoAvailability), resolveHandle HandleNotFound. A
// reversed takedown serves again; basic credentials other than the
// admin's are refused.
func TestReadsOfInactiveRepos(t *testing.T) {
	env := apitest.New(t)
	admin := apitest.AdminAuth(apitest.AdminPassword)
	active, deactivated, takendown, suspended, other := env.CreateAccount(), env.CreateAccount(), env.CreateAccount(), env.CreateAccount(), env.CreateAccount()
	rkeys := map[*apitest.Account]string{}
	for _, a := range []*apitest.Account{active, deactivated, takendown, suspended} {
		rkeys[a] = tid()
		create(t, env, a, rkeys[a], "before")
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.deactivateAccount", nil, deactivated.Token, map[string]any{}); r.Status != 200 {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	takedown := func(applied bool) {
		t.Helper()
		if r := env.Do("POST", "/xrpc/com.atproto.admin.updateSubjectStatus", nil, admin, map[string]any{
			"subject":  map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": takendown.DID},
			"takedown": map[string]any{"applied": applied, "ref": "test"},
		}); r.Status != 200 {
			t.Fatalf("takedown %v: %d %s", applied, r.Status, r.Body)
		}
	}
	takedown(true)
	// Nothing in the API suspends an account: the event is what would.
	seq, err := env.Log.Append(context.Background(), &eventlog.Event{Kind: eventlog.KindAccount, DID: suspended.DID,
		Account: &eventlog.Account{Active: false, Status: "suspended"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Runner.CatchUp(context.Background(), seq); err != nil {
		t.Fatal(err)
	}

	type method struct {
		name   string
		path   string
		params func(a *apitest.Account, byHandle bool) url.Values
		// refused is the error name anyone but the owner and the admin
		// gets, by the account's status.
		refused map[string]string
	}
	repoParam := func(a *apitest.Account, byHandle bool) string {
		if byHandle {
			return a.Handle.String()
		}
		return a.DID.String()
	}
	methods := []method{
		{"getRecord", "/xrpc/com.atproto.repo.getRecord", func(a *apitest.Account, h bool) url.Values {
			return url.Values{"repo": {repoParam(a, h)}, "collection": {"app.bsky.feed.post"}, "rkey": {rkeys[a]}}
		}, map[string]string{"takendown": "RecordNotFound", "deactivated": "RecordNotFound", "suspended": "RecordNotFound"}},
		{"listRecords", "/xrpc/com.atproto.repo.listRecords", func(a *apitest.Account, h bool) url.Values {
			return url.Values{"repo": {repoParam(a, h)}, "collection": {"app.bsky.feed.post"}}
		}, map[string]string{"takendown": "InvalidRequest", "deactivated": "InvalidRequest", "suspended": "InvalidRequest"}},
		{"describeRepo", "/xrpc/com.atproto.repo.describeRepo", func(a *apitest.Account, h bool) url.Values {
			return url.Values{"repo": {repoParam(a, h)}}
		}, map[string]string{"takendown": "RepoTakendown", "deactivated": "RepoDeactivated", "suspended": "RepoSuspended"}},
		{"resolveHandle", "/xrpc/com.atproto.identity.resolveHandle", func(a *apitest.Account, _ bool) url.Values {
			return url.Values{"handle": {a.Handle.String()}}
		}, map[string]string{"takendown": "HandleNotFound", "deactivated": "HandleNotFound", "suspended": "HandleNotFound"}},
	}
	accounts := []struct {
		status string
		a      *apitest.Account
	}{{"", active}, {"takendown", takendown}, {"deactivated", deactivated}, {"suspended", suspended}}
	check := func(t *testing.T) {
		for _, m := range methods {
			for _, acct := range accounts {
				for _, byHandle := range []bool{false, true} {
					for _, w := range []struct {
						name, cred string
						priv       bool
					}{{"anonymous", "", false}, {"another user", other.Token, false}, {"owner", acct.a.Token, true}, {"admin", admin, true}} {
						r := env.Do("GET", m.path, m.params(acct.a, byHandle), w.cred, nil)
						want := ""
						if acct.status != "" && !w.priv {
							want = m.refused[acct.status]
						}
						if want == "" && r.Status != 200 {
							t.Errorf("%s of a %q repo (by handle %v) as %s: %d %s, want 200", m.name, acct.status, byHandle, w.name, r.Status, r.Body)
						}
						if want != "" && (r.Status != 400 || r.ErrorName() != want) {
							t.Errorf("%s of a %q repo (by handle %v) as %s: %d %s, want 400 %s", m.name, acct.status, byHandle, w.name, r.Status, r.Body, want)
						}
					}
					if r := env.Do("GET", m.path, m.params(acct.a, byHandle), apitest.AdminAuth("wrong"), nil); r.Status != 401 {
						t.Errorf("%s with a wrong admin password: %d %s, want 401", m.name, r.Status, r.Body)
					}
				}
			}
		}
	}
	t.Run("gated", check)
	// A reversed takedown serves the repo to everyone again.
	takedown(false)
	accounts[1].status = ""
	t.Run("reversed", check)
}
