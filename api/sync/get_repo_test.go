package sync_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// getRepo's CAR is the whole repo at its head: indigo loads it, the commit
// is signed by the account's key, the tree is complete, and its records are
// exactly the ones listRecords lists; after more writes (updates, deletes,
// creates) the new export verifies the same way.
func TestGetRepo(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	other := env.CreateAccount()
	applyWrites(t, env, other, createW("app.bsky.feed.post", rk(1), post("not mine")))

	var ws []write
	for i := range 40 {
		ws = append(ws, createW("app.bsky.feed.post", rk(i), post(fmt.Sprintf("post %d", i))))
	}
	for i := range 25 {
		ws = append(ws, createW("com.example.note", fmt.Sprintf("n%03d", i), note(fmt.Sprintf("note %d", i))))
	}
	applyWrites(t, env, a, ws[:30]...)
	c := applyWrites(t, env, a, ws[30:]...)

	check := func(wantCommit string, wantRecords int) {
		t.Helper()
		r := get(env, "getRepo", q("did", a.DID.String()), "")
		roots, blocks, _ := carOf(t, r)
		commit, commitCID, recs := verifyRepo(t, a, r.Body)
		// Nothing but the repo: the commit, its tree's nodes, their records.
		tree, err := mst.Load(context.Background(), mst.MemBlocks(blocks), commit.Data)
		if err != nil {
			t.Fatal(err)
		}
		reachable := map[cid.Cid]bool{commitCID: true}
		err = tree.WalkNodes(context.Background(), func(n mst.Block, vals []cid.Cid) error {
			reachable[n.CID] = true
			for _, v := range vals {
				reachable[v] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(reachable) != len(blocks) {
			t.Fatalf("CAR has %d blocks, the repo %d", len(blocks), len(reachable))
		}
		if len(roots) != 1 || roots[0] != commitCID || commitCID.String() != wantCommit {
			t.Fatalf("roots %v, commit %s, want %s", roots, commitCID, wantCommit)
		}
		head, err := env.Log.RepoHead(context.Background(), a.DID)
		if err != nil {
			t.Fatal(err)
		}
		if commit.Rev != head.Rev.String() || commit.Data != head.Data {
			t.Fatalf("commit rev %s data %s, head %s %s", commit.Rev, commit.Data, head.Rev, head.Data)
		}
		if len(recs) != wantRecords {
			t.Fatalf("%d records in the CAR, want %d", len(recs), wantRecords)
		}
		sameRecords(t, recs, listAll(t, env, a.DID))
	}
	check(c.CID, 65)

	c = applyWrites(t, env, a,
		updateW("app.bsky.feed.post", rk(3), post("edited")),
		deleteW("app.bsky.feed.post", rk(7)),
		deleteW("com.example.note", "n010"),
		createW("com.example.other", "x1", map[string]any{"$type": "com.example.other", "n": 1}),
	)
	check(c.CID, 64)
}

// revState is the repo's whole block set at one rev.
type revState struct {
	rev    syntax.TID
	commit cid.Cid
	blocks map[cid.Cid]bool
}

// snapshot takes the repo's full export as a state.
func snapshot(t *testing.T, env *apitest.Env, a *apitest.Account) revState {
	t.Helper()
	r := get(env, "getRepo", q("did", a.DID.String()), "")
	roots, blocks, _ := carOf(t, r)
	c, _, _ := verifyRepo(t, a, r.Body)
	st := revState{rev: syntax.TID(c.Rev), commit: roots[0], blocks: map[cid.Cid]bool{}}
	for k := range blocks {
		st.blocks[k] = true
	}
	return st
}

// bruteSince is the brute-force answer for getRepo?since: the head commit,
// and every block of the current repo that was absent from some state from
// since's base (the last state at or before since) to now; the whole repo
// if since is older than every state.
func bruteSince(states []revState, since syntax.TID) map[cid.Cid]bool {
	now := states[len(states)-1]
	base := -1
	for i, s := range states {
		if s.rev <= since {
			base = i
		}
	}
	out := map[cid.Cid]bool{now.commit: true}
	for b := range now.blocks {
		if base < 0 {
			out[b] = true
			continue
		}
		for _, s := range states[base:] {
			if !s.blocks[b] {
				out[b] = true
				break
			}
		}
	}
	return out
}

// getRepo?since sends exactly the blocks a brute-force computation over
// every intermediate state says were written after since — for each rev of
// the repo's history, revs between them, and revs before and after it —
// including a record deleted and re-created identically (same CID) after
// since, whose block existed before since.
func TestGetRepoSince(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	states := []revState{snapshot(t, env, a)} // the empty genesis commit

	step := func(ws ...write) {
		t.Helper()
		applyWrites(t, env, a, ws...)
		states = append(states, snapshot(t, env, a))
	}
	var ws []write
	for i := range 30 {
		ws = append(ws, createW("app.bsky.feed.post", rk(i), post(fmt.Sprintf("post %d", i))))
	}
	step(ws...)
	step(createW("com.example.note", "a", note("a")), createW("com.example.note", "b", note("b")), createW("app.bsky.feed.post", rk(100), post("late")))
	step(updateW("app.bsky.feed.post", rk(4), post("edited 4")), updateW("com.example.note", "a", note("a2")))
	beforeDelete := len(states) - 1
	step(deleteW("app.bsky.feed.post", rk(12)))
	step(createW("app.bsky.feed.post", rk(12), post("post 12"))) // identical: same CID
	step(deleteW("com.example.note", "b"), deleteW("app.bsky.feed.post", rk(20)))
	step(createW("app.bsky.feed.post", rk(200), post("new")), updateW("com.example.note", "a", note("a")))
	step(updateW("app.bsky.feed.post", rk(5), post("post 5"))) // same value: no change
	head := states[len(states)-1]

	sinces := []syntax.TID{syntax.NewTIDFromInteger(states[0].rev.Integer() - 1_000_000)} // before the repo
	for i, s := range states {
		sinces = append(sinces, s.rev, syntax.NewTIDFromInteger(s.rev.Integer()+1)) // a rev and an unknown rev after it
		if i > 0 {
			sinces = append(sinces, syntax.NewTIDFromInteger(s.rev.Integer()-1)) // just before it
		}
	}
	for _, since := range sinces {
		r := get(env, "getRepo", q("did", a.DID.String(), "since", since.String()), "")
		roots, blocks, order := carOf(t, r)
		if len(roots) != 1 || roots[0] != head.commit || order[0] != head.commit {
			t.Fatalf("since %s: roots %v, first block %v, want the head commit %s", since, roots, order[0], head.commit)
		}
		want := bruteSince(states, since)
		got := map[cid.Cid]bool{}
		for k := range blocks {
			got[k] = true
		}
		if !maps.Equal(got, want) {
			var extra, missing []string
			for k := range got {
				if !want[k] {
					extra = append(extra, k.String())
				}
			}
			for k := range want {
				if !got[k] {
					missing = append(missing, k.String())
				}
			}
			slices.Sort(extra)
			slices.Sort(missing)
			t.Fatalf("since %s: %d blocks, want %d; extra %v; missing %v", since, len(got), len(want), extra, missing)
		}
		if since >= head.rev && len(blocks) != 1 {
			t.Fatalf("since %s at or after the head: %d blocks, want only the commit", since, len(blocks))
		}
	}

	// The deleted and re-created record: its block was in the repo before
	// the delete, yet getRepo since then carries it.
	rec := listAll(t, env, a.DID)["app.bsky.feed.post/"+rk(12)]
	if !states[beforeDelete].blocks[rec] {
		t.Fatal("the re-created record's block was not in the repo before the delete")
	}
	r := get(env, "getRepo", q("did", a.DID.String(), "since", states[beforeDelete].rev.String()), "")
	if _, blocks, _ := carOf(t, r); blocks[rec] == nil {
		t.Fatal("getRepo since before the delete lacks the re-created record")
	}
	// Since the previous rev, only the last commit's changes: the no-op
	// update wrote nothing, so only the commit.
	r = get(env, "getRepo", q("did", a.DID.String(), "since", states[len(states)-2].rev.String()), "")
	if _, blocks, _ := carOf(t, r); len(blocks) != 1 {
		t.Fatalf("since the previous rev (a no-op update): %d blocks, want the commit only", len(blocks))
	}
}

// A repo whose stored blocks lack one its tree needs (here the MST root the
// commit's CAR slice left out) answers a JSON 500, not a 200 with a
// truncated CAR, when the gap shows before anything was sent.
func TestGetRepoMissingBlock(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	ctx := context.Background()
	head, err := env.Log.RepoHead(ctx, a.DID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := env.Builder.Build(ctx, commit.Repo{DID: a.DID, Head: &head, Key: a.Key, Blocks: env.Blocks.Source(a.DID)},
		[]commit.Write{{Action: eventlog.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(rk(1)), Record: post("lost")}})
	if err != nil {
		t.Fatal(err)
	}
	roots, blocks, err := car.Unmarshal(res.Event.Commit.Blocks, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := slices.DeleteFunc(blocks, func(b car.Block) bool { return b.CID == res.Event.Commit.Data })
	if res.Event.Commit.Blocks, err = car.Marshal(roots, kept...); err != nil {
		t.Fatal(err)
	}
	seq, err := env.Log.Append(ctx, res.Event)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Runner.CatchUp(ctx, seq); err != nil {
		t.Fatal(err)
	}
	r := get(env, "getRepo", q("did", a.DID.String()), "")
	errIs(t, r, 500, "InternalServerError")
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error content type %q", ct)
	}
}
