package commit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// frame turns a commit event into the firehose #commit message.
func frame(ev *eventlog.Event) *comatproto.SyncSubscribeRepos_Commit {
	c := ev.Commit
	msg := &comatproto.SyncSubscribeRepos_Commit{
		Repo: ev.DID.String(), Rev: c.Rev.String(), Seq: int64(ev.Seq), Time: ev.Time.String(),
		Commit: lexutil.LexLink(c.Commit), Blocks: c.Blocks, Blobs: []lexutil.LexLink{},
		Ops: make([]*comatproto.SyncSubscribeRepos_RepoOp, len(c.Ops)),
	}
	if c.Since != "" {
		s := c.Since.String()
		msg.Since = &s
	}
	if c.PrevData.Defined() {
		l := lexutil.LexLink(c.PrevData)
		msg.PrevData = &l
	}
	for i, op := range c.Ops {
		o := &comatproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path}
		if op.CID.Defined() {
			l := lexutil.LexLink(op.CID)
			o.Cid = &l
		}
		if op.Prev.Defined() {
			l := lexutil.LexLink(op.Prev)
			o.Prev = &l
		}
		msg.Ops[i] = o
	}
	return msg
}

// prevState is what a relay remembers of a repo between commits.
type prevState struct {
	rev  string
	data cid.Cid
}

// relayVerify applies every check indigo's relay makes on a #commit
// (cmd/relay/relay/verify.go) strictly — including those it only logs —
// plus repo.VerifyCommitMessage's MST inversion and the signature.
func relayVerify(ctx context.Context, t *testing.T, ev *eventlog.Event, pub atcrypto.PublicKey, prev *prevState) *prevState {
	t.Helper()
	msg := frame(ev)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seq %d rev %s: %s", ev.Seq, msg.Rev, fmt.Sprintf(format, args...))
	}
	if len(msg.Blocks) == 0 || len(msg.Blocks) > 2_000_000 {
		fail("blocks size %d", len(msg.Blocks))
	}
	if len(msg.Ops) > 200 {
		fail("%d ops", len(msg.Ops))
	}
	if msg.TooBig || msg.Rebase {
		fail("deprecated flags set")
	}
	cm, commitCID, err := indigorepo.LoadCommitFromCAR(ctx, bytes.NewReader(msg.Blocks))
	if err != nil {
		fail("load commit: %v", err)
	}
	if !commitCID.Equals(ev.Commit.Commit) {
		fail("CAR root %s is not the commit %s", commitCID, ev.Commit.Commit)
	}
	if err := cm.VerifyStructure(); err != nil {
		fail("structure: %v", err)
	}
	if cm.Version != 3 || cm.Prev != nil {
		fail("commit version %d prev %v", cm.Version, cm.Prev)
	}
	rev, err := syntax.ParseTID(cm.Rev)
	if err != nil {
		fail("rev: %v", err)
	}
	if rev.Time().After(time.Now().Add(5 * time.Minute)) {
		fail("rev %s in the future", rev)
	}
	if err := cm.VerifySignature(pub); err != nil {
		fail("signature: %v", err)
	}
	if cm.DID != msg.Repo || cm.Rev != msg.Rev {
		fail("commit did/rev %s %s differ from message", cm.DID, cm.Rev)
	}
	if !cm.Data.Equals(ev.Commit.Data) {
		fail("commit data %s, event data %s", cm.Data, ev.Commit.Data)
	}
	if _, err := syntax.ParseDatetime(msg.Time); err != nil {
		fail("time: %v", err)
	}
	if prev != nil {
		if msg.PrevData == nil {
			fail("missing prevData")
		}
		if !cid.Cid(*msg.PrevData).Equals(prev.data) {
			fail("prevData %s, previous data %s", cid.Cid(*msg.PrevData), prev.data)
		}
		if msg.Since == nil || *msg.Since != prev.rev {
			fail("since %v, previous rev %s", msg.Since, prev.rev)
		}
		if msg.Rev <= prev.rev {
			fail("rev %s not after %s", msg.Rev, prev.rev)
		}
	} else if msg.PrevData != nil || msg.Since != nil {
		fail("first commit with prevData/since")
	}
	for _, op := range msg.Ops {
		if (op.Action == "update" || op.Action == "delete") && op.Prev == nil {
			fail("%s %s without prev", op.Action, op.Path)
		}
		if op.Action == "create" && op.Prev != nil {
			fail("create %s with prev", op.Path)
		}
	}
	if _, err := indigorepo.VerifyCommitMessage(ctx, msg); err != nil {
		fail("VerifyCommitMessage: %v", err)
	}
	return &prevState{rev: msg.Rev, data: cm.Data}
}

// repoUnderTest keeps a repo's blocks like the blocks projection does and
// appends its commits to a real log.
type repoUnderTest struct {
	did    syntax.DID
	key    atcrypto.PrivateKeyExportable
	pub    atcrypto.PublicKey
	blocks mst.MemBlocks
	log    *eventlog.Log
	b      *commit.Builder
	prev   *prevState
	// model of the records
	records map[string]cid.Cid
}

func newRepo(t *testing.T, l *eventlog.Log, p256 bool) *repoUnderTest {
	t.Helper()
	var key atcrypto.PrivateKeyExportable
	var err error
	if p256 {
		key, err = atcrypto.GeneratePrivateKeyP256()
	} else {
		key, err = atcrypto.GeneratePrivateKeyK256()
	}
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	r := &repoUnderTest{did: syntax.DID(fmt.Sprintf("did:plc:r%d", rand.Uint32())), key: key, pub: pub,
		blocks: mst.MemBlocks{}, log: l, b: commit.NewBuilder(nil), records: map[string]cid.Cid{}}
	if _, err := l.Append(context.Background(), commit.SigningKeyEvent(r.did, key)); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *repoUnderTest) head(t *testing.T) *eventlog.RepoHead {
	h, err := r.log.RepoHead(context.Background(), r.did)
	if errors.Is(err, eventlog.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &h
}

// commit builds, verifies and appends a commit; it returns Build's error.
func (r *repoUnderTest) commit(t *testing.T, writes []commit.Write) (*commit.Result, error) {
	t.Helper()
	ctx := context.Background()
	res, err := r.b.Build(ctx, commit.Repo{DID: r.did, Head: r.head(t), Key: r.key, Blocks: r.blocks}, writes)
	if err != nil {
		return nil, err
	}
	if _, err := r.log.Append(ctx, res.Event); err != nil {
		t.Fatalf("append: %v", err)
	}
	r.prev = relayVerify(ctx, t, res.Event, r.pub, r.prev)
	_, blocks, err := car.Unmarshal(res.Event.Commit.Blocks, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		r.blocks[b.CID] = b.Data
	}
	for i, w := range writes {
		if w.Action == eventlog.ActionDelete {
			delete(r.records, w.Path())
		} else {
			r.records[w.Path()] = res.Writes[i].CID
		}
	}
	return res, nil
}

func post(text string) map[string]any {
	return map[string]any{"text": text, "createdAt": "2026-11-26T12:00:00.000Z"}
}

func create(coll, rkey string, rec map[string]any) commit.Write {
	return commit.Write{Action: eventlog.ActionCreate, Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey), Record: rec}
}

// The whole repo, rebuilt by indigo from our blocks, holds exactly the model.
func (r *repoUnderTest) checkAgainstIndigo(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	h := r.head(t)
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, h.Commit)
	if err != nil {
		t.Fatal(err)
	}
	for c, b := range r.blocks {
		if err := w.Put(c, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, repo, err := indigorepo.LoadRepoFromCAR(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cid.Cid{}
	err = repo.MST.Walk(func(key []byte, val cid.Cid) error {
		got[string(key)] = val
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(r.records) {
		t.Fatalf("indigo sees %d records, model has %d", len(got), len(r.records))
	}
	for k, v := range r.records {
		if !got[k].Equals(v) {
			t.Fatalf("record %s: indigo %s, model %s", k, got[k], v)
		}
	}
	root, err := repo.MST.RootCID()
	if err != nil || !root.Equals(h.Data) {
		t.Fatalf("indigo root %s, head data %s (%v)", root, h.Data, err)
	}
}

func TestBuildPassesRelayChecks(t *testing.T) {
	for _, p256 := range []bool{false, true} {
		t.Run(map[bool]string{false: "K256", true: "P256"}[p256], func(t *testing.T) {
			l := eventlogtest.Open(t, nil)
			r := newRepo(t, l, p256)
			// first commit: empty repo
			if _, err := r.commit(t, nil); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			clock := syntax.NewTIDClock(1)
			colls := []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow", "com.example.thing"}
			for i := range 120 {
				n := 1 + rng.IntN(4)
				if i%40 == 39 {
					n = 200 // a maximal batch
				}
				var writes []commit.Write
				used := map[string]bool{}
				for range n {
					var existing []string
					for p := range r.records {
						if !used[p] {
							existing = append(existing, p)
						}
					}
					a := rng.IntN(4)
					if len(existing) == 0 || a < 2 {
						coll := colls[rng.IntN(len(colls))]
						w := create(coll, clock.Next().String(), post(fmt.Sprintf("post %d", rng.IntN(1e6))))
						used[w.Path()] = true
						writes = append(writes, w)
						continue
					}
					p := existing[rng.IntN(len(existing))]
					used[p] = true
					coll, rkey, _ := strings.Cut(p, "/")
					w := commit.Write{Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey)}
					if a == 2 {
						w.Action, w.Record = eventlog.ActionUpdate, post(fmt.Sprintf("edit %d", rng.IntN(1e6)))
					} else {
						w.Action = eventlog.ActionDelete
					}
					writes = append(writes, w)
				}
				if _, err := r.commit(t, writes); err != nil {
					t.Fatalf("commit %d: %v", i, err)
				}
			}
			if l.Head() != 122 || len(r.records) < 300 {
				t.Fatalf("head %d with %d records: the commits did not happen", l.Head(), len(r.records))
			}
			r.checkAgainstIndigo(t)
			if err := l.Verify(context.Background(), &eventlog.VerifyOptions{Check: commit.NewVerifier().Check}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	r := newRepo(t, l, false)
	if _, err := r.commit(t, []commit.Write{create("app.bsky.feed.post", "a", post("hi"))}); err != nil {
		t.Fatal(err)
	}
	existing := r.records["app.bsky.feed.post/a"]
	other := eventlogtest.CID("other")
	undef := cid.Undef
	big := strings.Repeat("x", commit.MaxRecordBytes)
	many := make([]commit.Write, commit.MaxOps+1)
	for i := range many {
		many[i] = create("app.bsky.feed.post", fmt.Sprintf("k%d", i), post("x"))
	}
	// Enough records of ~10 KB to pass 2 MB of blocks in one commit.
	huge := make([]commit.Write, 200)
	for i := range huge {
		huge[i] = create("app.bsky.feed.post", fmt.Sprintf("h%d", i), post(strings.Repeat(fmt.Sprint(i), 11_000/len(fmt.Sprint(i)))))
	}
	tests := []struct {
		name   string
		writes []commit.Write
		want   error
	}{
		{"too many writes", many, commit.ErrTooManyWrites},
		{"record too large", []commit.Write{create("app.bsky.feed.post", "b", post(big))}, commit.ErrRecordTooLarge},
		{"blocks too large", huge, commit.ErrCommitTooLarge},
		{"type mismatch", []commit.Write{create("app.bsky.feed.post", "b", map[string]any{"$type": "app.bsky.feed.like"})}, commit.ErrInvalidRecord},
		{"type not string", []commit.Write{create("app.bsky.feed.post", "b", map[string]any{"$type": 12})}, commit.ErrInvalidRecord},
		{"float", []commit.Write{create("app.bsky.feed.post", "b", map[string]any{"n": 1.5})}, commit.ErrInvalidRecord},
		{"create existing", []commit.Write{create("app.bsky.feed.post", "a", post("again"))}, commit.ErrRecordExists},
		{"update missing", []commit.Write{{Action: eventlog.ActionUpdate, Collection: "app.bsky.feed.post", RKey: "zz", Record: post("x")}}, commit.ErrRecordNotFound},
		{"delete missing", []commit.Write{{Action: eventlog.ActionDelete, Collection: "app.bsky.feed.post", RKey: "zz"}}, commit.ErrRecordNotFound},
		{"same path twice", []commit.Write{create("app.bsky.feed.post", "c", post("1")), create("app.bsky.feed.post", "c", post("2"))}, commit.ErrInvalidWrite},
		{"bad key", []commit.Write{create("app.bsky.feed.post", "bad key", post("1"))}, commit.ErrInvalidWrite},
		{"bad action", []commit.Write{{Action: "upsert", Collection: "app.bsky.feed.post", RKey: "q"}}, commit.ErrInvalidWrite},
		{"swap mismatch", []commit.Write{{Action: eventlog.ActionUpdate, Collection: "app.bsky.feed.post", RKey: "a", Record: post("x"), SwapRecord: &other}}, commit.ErrInvalidSwap},
		{"swap must not exist", []commit.Write{{Action: eventlog.ActionUpdate, Collection: "app.bsky.feed.post", RKey: "a", Record: post("x"), SwapRecord: &undef}}, commit.ErrInvalidSwap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := l.Head()
			if _, err := r.commit(t, tt.writes); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if l.Head() != before {
				t.Fatal("a refused commit was appended")
			}
		})
	}
	// A matching swap works; a missing $type is filled in from the collection.
	res, err := r.commit(t, []commit.Write{{Action: eventlog.ActionUpdate, Collection: "app.bsky.feed.post", RKey: "a", Record: post("swapped"), SwapRecord: &existing}})
	if err != nil {
		t.Fatal(err)
	}
	_, blocks, err := car.Unmarshal(res.Event.Commit.Blocks, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range blocks {
		if b.CID.Equals(res.Writes[0].CID) {
			found = bytes.Contains(b.Data, []byte("$typerapp.bsky.feed.post"))
		}
	}
	if !found {
		t.Fatal("record block missing or without the filled-in $type")
	}
}

func TestRevs(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	r := newRepo(t, l, false)
	if _, err := r.commit(t, nil); err != nil {
		t.Fatal(err)
	}
	h := r.head(t)
	// A clock that stepped back 2 minutes: revs still increase (last+1).
	r.b = commit.NewBuilder(func() time.Time { return time.Now().Add(-2 * time.Minute) })
	// Force the head's rev ahead of the stepped-back clock.
	res, err := r.b.Build(context.Background(), commit.Repo{DID: r.did, Head: &eventlog.RepoHead{
		Rev: syntax.NewTIDNow(0), Commit: h.Commit, Data: h.Data, Seq: h.Seq}, Key: r.key, Blocks: r.blocks}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rev <= h.Rev {
		t.Fatalf("rev %s does not follow %s", res.Rev, h.Rev)
	}
	// A clock more than 5 minutes behind the last rev: refused, never a rev
	// that relays would drop.
	r.b = commit.NewBuilder(func() time.Time { return time.Now().Add(-10 * time.Minute) })
	_, err = r.b.Build(context.Background(), commit.Repo{DID: r.did, Head: &eventlog.RepoHead{
		Rev: syntax.NewTIDNow(0), Commit: h.Commit, Data: h.Data, Seq: h.Seq}, Key: r.key, Blocks: r.blocks}, nil)
	if !errors.Is(err, commit.ErrClock) {
		t.Fatalf("err = %v, want ErrClock", err)
	}
}
