package sync_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
)

// hostRepos creates n accounts with the events createAccount appends, as
// env.CreateAccount does but sharing one password hash (scrypt is slow
// under -race), in a random DID order, and returns their DIDs sorted.
func hostRepos(t *testing.T, env *apitest.Env, n int) []string {
	t.Helper()
	ctx := context.Background()
	hash, err := auth.HashPassword("password-shared")
	if err != nil {
		t.Fatal(err)
	}
	var dids []string
	for i := range n {
		did := syntax.DID(fmt.Sprintf("did:plc:sync%020d", (i*7919)%1000))
		handle := syntax.Handle(fmt.Sprintf("sync%d.test", i))
		key, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			t.Fatal(err)
		}
		genesis, err := env.Builder.Build(ctx, commit.Repo{DID: did, Key: key, Blocks: env.Blocks.Source(did)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sync, err := commit.SyncAfter(genesis.Event)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := env.Log.Append(ctx,
			commit.SigningKeyEvent(did, key),
			events.Must(did, &events.AccountCreated{Handle: handle, PasswordHash: hash, CreatedAt: time.Now().UTC().Format(time.RFC3339)}),
			&eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: handle}},
			&eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: true}},
			genesis.Event, sync)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Runner.CatchUp(ctx, seq); err != nil {
			t.Fatal(err)
		}
		dids = append(dids, did.String())
	}
	slices.Sort(dids)
	return dids
}

type reposPage struct {
	Cursor string `json:"cursor"`
	Repos  []struct {
		DID    string `json:"did"`
		Head   string `json:"head"`
		Rev    string `json:"rev"`
		Active bool   `json:"active"`
		Status string `json:"status"`
	} `json:"repos"`
}

// listRepos pages through every repo once, in DID order, limit at a time,
// each with its head commit and rev; the last page has no cursor.
func TestListReposPagination(t *testing.T) {
	env := apitest.New(t)
	want := hostRepos(t, env, 25)
	ctx := context.Background()
	var seen []string
	var sizes []int
	cursor := ""
	for range 10 {
		qs := q("limit", "10")
		if cursor != "" {
			qs.Set("cursor", cursor)
		}
		r := get(env, "listRepos", qs, "")
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		var p reposPage
		r.JSON(t, &p)
		sizes = append(sizes, len(p.Repos))
		for _, rp := range p.Repos {
			head, err := env.Log.RepoHead(ctx, toDID(t, rp.DID))
			if err != nil {
				t.Fatal(err)
			}
			if rp.Head != head.Commit.String() || rp.Rev != head.Rev.String() || !rp.Active || rp.Status != "" {
				t.Fatalf("repo %+v, head %s %s", rp, head.Commit, head.Rev)
			}
			seen = append(seen, rp.DID)
		}
		if cursor = p.Cursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("listed %v\nwant %v", seen, want)
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Fatalf("page sizes %v, want [10 10 5]", sizes)
	}
	// The default limit takes them all in one page.
	var p reposPage
	get(env, "listRepos", nil, "").JSON(t, &p)
	if len(p.Repos) != 25 || p.Cursor != "" {
		t.Fatalf("default page: %d repos, cursor %q", len(p.Repos), p.Cursor)
	}
}
