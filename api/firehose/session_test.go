package firehose_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/eventlog"
)

// session drives the real server through XRPC and records, for every
// action, the seqs it appended and what its frames must look like.
type session struct {
	t     *testing.T
	env   *apitest.Env
	steps []step
}

type step struct {
	name     string
	from, to eventlog.Seq // the action appended (from, to]
	check    func(t *testing.T, fs []frame)
}

func (s *session) call(method, token string, body any) map[string]any {
	s.t.Helper()
	r := s.env.Do("POST", "/xrpc/"+method, nil, token, body)
	if r.Status != 200 {
		s.t.Fatalf("%s: %d %s", method, r.Status, r.Body)
	}
	var out map[string]any
	if len(r.Body) > 0 {
		r.JSON(s.t, &out)
	}
	return out
}

// do runs action and records its step.
func (s *session) do(name string, action func(), check func(t *testing.T, fs []frame)) {
	s.t.Helper()
	from := s.env.Log.Head()
	action()
	s.steps = append(s.steps, step{name: name, from: from, to: s.env.Log.Head(), check: check})
}

// kinds fails unless fs are of exactly these types, all about did.
func kinds(t *testing.T, fs []frame, did string, want ...string) {
	t.Helper()
	var got []string
	for _, f := range fs {
		got = append(got, f.typ)
		if f.did() != did {
			t.Fatalf("frame %s is about %s, want %s", f.typ, f.did(), did)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("frames %v, want %v", got, want)
	}
}

func commitOps(t *testing.T, f frame, want ...string) []*comatproto.SyncSubscribeRepos_RepoOp {
	t.Helper()
	var got []string
	for _, op := range f.evt.RepoCommit.Ops {
		got = append(got, op.Action+" "+op.Path)
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("ops %v, want %v", got, want)
	}
	return f.evt.RepoCommit.Ops
}

func linkIs(l *lexutil.LexLink, want string) bool { return l != nil && cid.Cid(*l).String() == want }

// A scripted session through XRPC (real PLC): two signups, 300 posts,
// updates, deletes, applyWrites batches, a handle change, deactivation and
// activation, and an admin deletion of the second account. A live
// subscriber connected before it all receives every public event once, in
// seq order, as the frames each action must emit (in the order the
// reference emits them); every #commit passes indigo's
// VerifyCommitMessage (with prevData, so its MST inversion check runs) and
// its signature verifies under the key the PLC document names, the
// since/rev chain holds per repo, no private event or secret reaches the
// wire, and replaying from cursor 0 afterwards gives byte-identical frames
// for every seq still public (the deleted account's events are purged).
func TestSessionStream(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("fh-invite", 2)
	ctx := t.Context()
	live := subscribe(t, env, -1)
	s := &session{t: t, env: env}
	dir := &identity.BaseDirectory{PLCURL: env.PDS.PLC.URL, SkipHandleVerification: true}
	keys := map[string]atcrypto.PublicKey{}

	type account struct{ did, token, handle string }
	signup := func(handle, password string) account {
		var a account
		s.do("createAccount "+handle, func() {
			out := s.call("com.atproto.server.createAccount", "", map[string]any{"handle": handle,
				"email": handle + "@example.com", "password": password, "inviteCode": "fh-invite"})
			a = account{did: out["did"].(string), token: out["accessJwt"].(string), handle: handle}
		}, func(t *testing.T, fs []frame) {
			kinds(t, fs, a.did, "#identity", "#account", "#commit", "#sync")
			if h := fs[0].evt.RepoIdentity.Handle; h == nil || *h != handle {
				t.Fatalf("identity handle %v", h)
			}
			if acc := fs[1].evt.RepoAccount; !acc.Active || acc.Status != nil {
				t.Fatalf("account %+v, want active without status", acc)
			}
			c := fs[2].evt.RepoCommit
			if c.Since != nil || c.PrevData != nil || len(c.Ops) != 0 {
				t.Fatalf("genesis commit since %v prevData %v ops %d", c.Since, c.PrevData, len(c.Ops))
			}
			if fs[3].evt.RepoSync.Rev != c.Rev {
				t.Fatalf("sync rev %s, commit rev %s", fs[3].evt.RepoSync.Rev, c.Rev)
			}
		})
		ident, err := dir.LookupDID(ctx, syntax.DID(a.did))
		if err != nil {
			t.Fatal(err)
		}
		if keys[a.did], err = ident.PublicKey(); err != nil {
			t.Fatal(err)
		}
		return a
	}
	alice := signup("alice.test", "alice-password-1")
	bob := signup("bob.test", "bob-password-22")

	post := func(i int) map[string]any {
		return map[string]any{"text": fmt.Sprintf("post number %d", i), "createdAt": "2026-11-26T12:00:00.000Z"}
	}
	type rec struct{ rkey, cid string }
	create := func(a account, i int) rec {
		var r rec
		s.do(fmt.Sprintf("createRecord %d", i), func() {
			out := s.call("com.atproto.repo.createRecord", a.token, map[string]any{"repo": a.did, "collection": "app.bsky.feed.post", "record": post(i)})
			uri, err := syntax.ParseATURI(out["uri"].(string))
			if err != nil {
				t.Fatal(err)
			}
			r = rec{rkey: uri.RecordKey().String(), cid: out["cid"].(string)}
		}, func(t *testing.T, fs []frame) {
			kinds(t, fs, a.did, "#commit")
			ops := commitOps(t, fs[0], "create app.bsky.feed.post/"+r.rkey)
			if !linkIs(ops[0].Cid, r.cid) || ops[0].Prev != nil {
				t.Fatalf("create op cid %v prev %v, want %s and none", ops[0].Cid, ops[0].Prev, r.cid)
			}
		})
		return r
	}
	var posts []rec
	for i := range 300 {
		posts = append(posts, create(alice, i))
	}
	for i := range 10 { // updates
		old := posts[i]
		s.do(fmt.Sprintf("putRecord %d", i), func() {
			out := s.call("com.atproto.repo.putRecord", alice.token, map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post",
				"rkey": old.rkey, "record": post(1000 + i)})
			posts[i].cid = out["cid"].(string)
		}, func(t *testing.T, fs []frame) {
			kinds(t, fs, alice.did, "#commit")
			ops := commitOps(t, fs[0], "update app.bsky.feed.post/"+old.rkey)
			if !linkIs(ops[0].Cid, posts[i].cid) || !linkIs(ops[0].Prev, old.cid) {
				t.Fatalf("update op cid %v prev %v", ops[0].Cid, ops[0].Prev)
			}
		})
	}
	for i := 10; i < 20; i++ { // deletes
		old := posts[i]
		s.do(fmt.Sprintf("deleteRecord %d", i), func() {
			s.call("com.atproto.repo.deleteRecord", alice.token, map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post", "rkey": old.rkey})
		}, func(t *testing.T, fs []frame) {
			kinds(t, fs, alice.did, "#commit")
			ops := commitOps(t, fs[0], "delete app.bsky.feed.post/"+old.rkey)
			if ops[0].Cid != nil || !linkIs(ops[0].Prev, old.cid) {
				t.Fatalf("delete op cid %v prev %v, want null and %s", ops[0].Cid, ops[0].Prev, old.cid)
			}
		})
	}
	tids := syntax.NewTIDClock(0)
	for b := range 5 { // applyWrites batches
		up, del := posts[20+b], posts[30+b]
		rkeys := []string{tids.Next().String(), tids.Next().String(), tids.Next().String()}
		s.do(fmt.Sprintf("applyWrites %d", b), func() {
			var writes []map[string]any
			for j, rk := range rkeys {
				writes = append(writes, map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post",
					"rkey": rk, "value": post(2000 + 10*b + j)})
			}
			writes = append(writes,
				map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.feed.post", "rkey": up.rkey, "value": post(3000 + b)},
				map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": del.rkey})
			s.call("com.atproto.repo.applyWrites", alice.token, map[string]any{"repo": alice.did, "writes": writes})
		}, func(t *testing.T, fs []frame) {
			kinds(t, fs, alice.did, "#commit")
			var want []string
			for _, rk := range rkeys {
				want = append(want, "create app.bsky.feed.post/"+rk)
			}
			want = append(want, "update app.bsky.feed.post/"+up.rkey, "delete app.bsky.feed.post/"+del.rkey)
			commitOps(t, fs[0], want...)
		})
	}
	for i := range 5 {
		create(bob, 4000+i)
	}
	s.do("updateHandle", func() {
		s.call("com.atproto.identity.updateHandle", alice.token, map[string]any{"handle": "alice2.test"})
	}, func(t *testing.T, fs []frame) {
		kinds(t, fs, alice.did, "#identity")
		if h := fs[0].evt.RepoIdentity.Handle; h == nil || *h != "alice2.test" {
			t.Fatalf("identity handle %v, want alice2.test", h)
		}
	})
	s.do("deactivateAccount", func() {
		s.call("com.atproto.server.deactivateAccount", alice.token, map[string]any{})
	}, func(t *testing.T, fs []frame) {
		kinds(t, fs, alice.did, "#account")
		if a := fs[0].evt.RepoAccount; a.Active || a.Status == nil || *a.Status != "deactivated" {
			t.Fatalf("account %+v, want inactive deactivated", a)
		}
	})
	s.do("activateAccount", func() {
		s.call("com.atproto.server.activateAccount", alice.token, nil)
	}, func(t *testing.T, fs []frame) {
		kinds(t, fs, alice.did, "#account", "#identity", "#sync")
		if a := fs[0].evt.RepoAccount; !a.Active || a.Status != nil {
			t.Fatalf("account %+v, want active without status", a)
		}
		if h := fs[1].evt.RepoIdentity.Handle; h == nil || *h != "alice2.test" {
			t.Fatalf("identity handle %v", h)
		}
	})
	create(alice, 5000)
	// The purge below turns bob's earlier events into tombstones: let the
	// live subscriber have them first, as a relay would.
	live.waitSeq(lastPublic(t, env))
	s.do("admin deleteAccount", func() {
		s.call("com.atproto.admin.deleteAccount", apitest.AdminAuth(apitest.AdminPassword), map[string]any{"did": bob.did})
	}, func(t *testing.T, fs []frame) {
		kinds(t, fs, bob.did, "#account")
		if a := fs[0].evt.RepoAccount; a.Active || a.Status == nil || *a.Status != "deleted" {
			t.Fatalf("account %+v, want inactive deleted", a)
		}
	})
	create(alice, 5001)

	end := lastPublic(t, env)
	got := live.waitSeq(end)
	checkSeqs(t, "live", got)
	bySeq := map[int64]frame{}
	for _, f := range got {
		if f.seq == 0 {
			t.Fatalf("unexpected %s frame on the live stream", f.typ)
		}
		bySeq[f.seq] = f
	}

	// Each action's frames, in order; nothing outside the actions.
	covered := 0
	for _, st := range s.steps {
		var fs []frame
		for _, f := range got {
			if f.seq > int64(st.from) && f.seq <= int64(st.to) {
				fs = append(fs, f)
			}
		}
		covered += len(fs)
		t.Run(st.name, func(t *testing.T) { st.check(t, fs) })
	}
	if covered != len(got) {
		t.Fatalf("%d frames, %d of them from the session's actions", len(got), covered)
	}

	// Every commit and sync verifies; the chain holds per repo.
	lastRev := map[string]string{}
	commits := 0
	for _, f := range got {
		switch {
		case f.evt.RepoCommit != nil:
			m := f.evt.RepoCommit
			commits++
			if _, err := repo.VerifyCommitMessage(ctx, m); err != nil {
				t.Fatalf("seq %d: VerifyCommitMessage: %v", m.Seq, err)
			}
			prev, seen := lastRev[m.Repo]
			if (m.Since == nil) == seen || (seen && *m.Since != prev) {
				t.Fatalf("seq %d: since %v after rev %q", m.Seq, m.Since, prev)
			}
			if seen && m.PrevData == nil {
				t.Fatalf("seq %d: no prevData on a later commit", m.Seq)
			}
			verifySigned(t, m.Seq, m.Blocks, cid.Cid(m.Commit), m.Rev, keys[m.Repo])
			lastRev[m.Repo] = m.Rev
		case f.evt.RepoSync != nil:
			m := f.evt.RepoSync
			c := verifySigned(t, m.Seq, m.Blocks, cid.Undef, m.Rev, keys[m.Did])
			if c.DID != m.Did {
				t.Fatalf("seq %d: sync commit of %s", m.Seq, c.DID)
			}
			lastRev[m.Did] = m.Rev
		}
	}
	if want := 2 + 300 + 10 + 10 + 5 + 5 + 2; commits != want { // geneses, posts, updates, deletes, batches, bob's, alice's last
		t.Fatalf("%d commits, want %d", commits, want)
	}

	// Nothing private reaches the wire.
	all := bytes.Join(func() [][]byte {
		var b [][]byte
		for _, f := range got {
			b = append(b, f.raw)
		}
		return b
	}(), nil)
	for _, secret := range []string{"alice-password-1", "bob-password-22", "alice.test@example.com", "bob.test@example.com", "fh-invite"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Fatalf("%q appears on the firehose", secret)
		}
	}
	it, err := env.Log.Iter(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	privates := 0
	for it.Next() {
		ev := it.Event()
		if ev.Kind != eventlog.KindPrivate {
			continue
		}
		privates++
		if _, ok := bySeq[int64(ev.Seq)]; ok {
			t.Fatalf("private event %d (%s) has a frame", ev.Seq, ev.Private.Type)
		}
		if len(ev.Private.Data) >= 16 && bytes.Contains(all, ev.Private.Data) {
			t.Fatalf("private %s payload of seq %d appears on the firehose", ev.Private.Type, ev.Seq)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if privates == 0 {
		t.Fatal("the session appended no private events to check")
	}

	// Replayed later, every seq still public has the same bytes; the only
	// seqs missing are bob's purged events (all but his deletion).
	replay := subscribe(t, env, 0)
	again := replay.waitSeq(end)
	checkSeqs(t, "replay", again)
	inReplay := map[int64]bool{}
	for _, f := range again {
		inReplay[f.seq] = true
		lf, ok := bySeq[f.seq]
		if !ok {
			t.Fatalf("replay has seq %d the live stream never had", f.seq)
		}
		if !bytes.Equal(lf.raw, f.raw) {
			t.Fatalf("seq %d: replayed frame differs from the live one", f.seq)
		}
	}
	deleted := s.steps[len(s.steps)-2]
	for _, f := range got {
		purged := f.did() == bob.did && f.seq <= int64(deleted.from)
		if inReplay[f.seq] == purged {
			t.Fatalf("seq %d (%s of %s): in replay %v, purged %v", f.seq, f.typ, f.did(), inReplay[f.seq], purged)
		}
	}
}

// verifySigned loads the signed commit from a frame's CAR slice and checks
// its signature, rev and (if defined) CID.
func verifySigned(t *testing.T, seq int64, blocks []byte, want cid.Cid, rev string, key atcrypto.PublicKey) *repo.Commit {
	t.Helper()
	if key == nil {
		t.Fatalf("seq %d: no key for the repo", seq)
	}
	c, root, err := repo.LoadCommitFromCAR(context.Background(), bytes.NewReader(blocks))
	if err != nil {
		t.Fatalf("seq %d: load commit: %v", seq, err)
	}
	if want.Defined() && !root.Equals(want) {
		t.Fatalf("seq %d: CAR root %s, commit %s", seq, root, want)
	}
	if c.Rev != rev {
		t.Fatalf("seq %d: commit rev %s, message rev %s", seq, c.Rev, rev)
	}
	if err := c.VerifySignature(key); err != nil {
		t.Fatalf("seq %d: signature: %v", seq, err)
	}
	return c
}
