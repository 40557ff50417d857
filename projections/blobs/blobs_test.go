package blobs_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/blobs"
	"github.com/pdslog/pdslog/projections/projectiontest"
)

func blobCID(i int) cid.Cid {
	c, err := cid.V1Builder{Codec: cid.Raw, MhType: multihash.SHA2_256}.Sum([]byte(fmt.Sprintf("blob %d", i)))
	if err != nil {
		panic(err)
	}
	return c
}

func blobRef(i int) atdata.Blob {
	return atdata.Blob{Ref: atdata.CIDLink(blobCID(i)), MimeType: "image/png", Size: int64(100 + i)}
}

// stream mixes real signed commits whose records reference blobs (a pool
// of 8 per stream, shared by every repo) with uploads, collector deletions
// and quarantines.
type stream struct {
	*committest.Stream
	rng *rand.Rand
	tid *syntax.TIDClock
}

func newStream(seed uint64, n int) projectiontest.Stream {
	return &stream{Stream: committest.NewStream(seed, n), rng: rand.New(rand.NewPCG(seed, 11)), tid: syntax.NewTIDClock(5)}
}

func (s *stream) record() map[string]any {
	rec := map[string]any{"text": "pic", "createdAt": "2026-11-26T12:00:00.000Z"}
	var imgs []any
	for range s.rng.IntN(3) {
		imgs = append(imgs, map[string]any{"image": blobRef(s.rng.IntN(8)), "alt": ""})
	}
	if len(imgs) > 0 {
		rec["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": imgs}
	}
	return rec
}

func (s *stream) Next() *eventlog.Event {
	r := s.Repos[s.rng.IntN(len(s.Repos))]
	if !r.KeyLogged || r.Head == nil {
		return s.Stream.Next()
	}
	c := blobCID(s.rng.IntN(8)).String()
	switch k := s.rng.IntN(20); {
	case k < 4:
		ev, _ := events.New(r.DID, &events.BlobUploaded{CID: c, MimeType: "image/png", DeclaredMime: "image/jpeg", Size: 123})
		return ev
	case k < 5:
		ev, _ := events.New(r.DID, &events.BlobDeleted{CID: c, Reason: "unreferenced"})
		return ev
	case k < 6:
		ev, _ := events.New(r.DID, &events.BlobQuarantine{CID: c, On: s.rng.IntN(2) == 0})
		return ev
	case k < 16:
		var writes []commit.Write
		var existing []string
		for p := range r.Records {
			existing = append(existing, p)
		}
		slices.Sort(existing)
		used := map[string]bool{}
		for range 1 + s.rng.IntN(3) {
			if len(existing) == 0 || s.rng.IntN(3) == 0 {
				writes = append(writes, commit.Write{Action: eventlog.ActionCreate, Collection: "app.bsky.feed.post",
					RKey: syntax.RecordKey(s.tid.Next().String()), Record: s.record()})
				continue
			}
			p := existing[s.rng.IntN(len(existing))]
			if used[p] {
				continue
			}
			used[p] = true
			coll, rkey, _ := blobs.SplitPath(p)
			w := commit.Write{Action: eventlog.ActionDelete, Collection: coll, RKey: rkey}
			if s.rng.IntN(2) == 0 {
				w.Action, w.Record = eventlog.ActionUpdate, s.record()
			}
			writes = append(writes, w)
		}
		return s.Commit(r, writes)
	default:
		return s.Stream.Next()
	}
}

func TestConformance(t *testing.T) {
	projectiontest.Run(t, func(s *projections.Store) projections.Projection { return blobs.New(s) }, newStream)
}

// env is a log, the blobs projection fed from it, and one repo.
type env struct {
	t    *testing.T
	log  *eventlog.Log
	p    *blobs.Projection
	r    *projections.Runner
	s    *committest.Stream
	repo *committest.Repo
	tid  *syntax.TIDClock
}

func newEnv(t *testing.T) *env { return newEnvAt(t, nil) }

func newEnvAt(t *testing.T, now func() time.Time) *env {
	l := eventlogtest.Open(t, &eventlog.Options{Now: now})
	p := blobs.New(projectiontest.OpenStore(t))
	e := &env{t: t, log: l, p: p, r: projectiontest.Feed(l, p), s: committest.NewStream(1, 1), tid: syntax.NewTIDClock(9)}
	e.repo = e.s.Repos[0]
	e.append(e.s.Next()) // signing key
	e.append(e.s.Commit(e.repo, nil))
	return e
}

func (e *env) append(evs ...*eventlog.Event) {
	e.t.Helper()
	seq, err := e.log.Append(context.Background(), evs...)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.r.CatchUp(context.Background(), seq); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) upload(i int) {
	e.t.Helper()
	ev, err := events.New(e.repo.DID, &events.BlobUploaded{CID: blobCID(i).String(), MimeType: "image/png", Size: int64(100 + i)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.append(ev)
}

func (e *env) post(blobIdx ...int) syntax.RecordKey {
	rkey := syntax.RecordKey(e.tid.Next().String())
	e.put(eventlog.ActionCreate, rkey, blobIdx...)
	return rkey
}

func (e *env) put(action string, rkey syntax.RecordKey, blobIdx ...int) {
	var imgs []any
	for _, i := range blobIdx {
		imgs = append(imgs, map[string]any{"image": blobRef(i), "alt": ""})
	}
	rec := map[string]any{"text": "x", "createdAt": "2026-11-26T12:00:00.000Z"}
	if len(imgs) > 0 {
		rec["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": imgs}
	}
	w := commit.Write{Action: action, Collection: "app.bsky.feed.post", RKey: rkey, Record: rec}
	if action == eventlog.ActionDelete {
		w.Record = nil
	}
	e.append(e.s.Commit(e.repo, []commit.Write{w}))
}

func (e *env) get(i int) *blobs.Blob {
	e.t.Helper()
	b, err := e.p.Get(context.Background(), e.repo.DID, blobCID(i))
	if errors.Is(err, blobs.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) candidates() []string {
	e.t.Helper()
	cs, err := e.p.Candidates(context.Background(), time.Now().Add(time.Hour), 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		if c.DID != e.repo.DID {
			e.t.Fatalf("candidate of %s", c.DID)
		}
		out = append(out, c.CID)
	}
	slices.Sort(out)
	return out
}

func cids(is ...int) []string {
	var out []string
	for _, i := range is {
		out = append(out, blobCID(i).String())
	}
	slices.Sort(out)
	return out
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.upload(1)
	e.upload(2)
	if b := e.get(1); b == nil || !b.Uploaded || b.Refs != 0 || b.MimeType != "image/png" || b.Size != 101 {
		t.Fatalf("after upload: %+v", b)
	}
	if got, want := e.candidates(), cids(1, 2); !slices.Equal(got, want) {
		t.Fatalf("candidates %v, want %v", got, want)
	}
	// A post referencing blob 1 twice (two images) and blob 3, never uploaded.
	rkey := e.post(1, 1, 3)
	if b := e.get(1); b.Refs != 1 || b.Unreferenced != 0 {
		t.Fatalf("referenced blob: %+v", b)
	}
	if got, want := e.candidates(), cids(2); !slices.Equal(got, want) {
		t.Fatalf("candidates %v, want %v", got, want)
	}
	missing, err := e.p.List(ctx, e.repo.DID, "", 10, func(b *blobs.Blob) bool { return !b.Uploaded })
	if err != nil || len(missing) != 1 || missing[0].CID != blobCID(3).String() || missing[0].FirstRef != "app.bsky.feed.post/"+rkey.String() {
		t.Fatalf("missing %+v %v", missing, err)
	}
	// A second post shares blob 1; the first is updated to drop it.
	other := e.post(1)
	if b := e.get(1); b.Refs != 2 {
		t.Fatalf("two references: %+v", b)
	}
	head := e.repo.Head.Rev
	e.put(eventlog.ActionUpdate, rkey, 3)
	if b := e.get(1); b.Refs != 1 {
		t.Fatalf("after update: %+v", b)
	}
	// listBlobs since the rev before the update sees only what the update wrote.
	got, err := e.p.ReferencedSince(ctx, e.repo.DID, head, "", 10)
	if err != nil || !slices.Equal(got, cids(3)) {
		t.Fatalf("referenced since %s: %v %v", head, got, err)
	}
	got, err = e.p.ReferencedSince(ctx, e.repo.DID, "", "", 10)
	if err != nil || !slices.Equal(got, cids(1, 3)) {
		t.Fatalf("referenced: %v %v", got, err)
	}
	// Deleting the last reference makes blob 1 a candidate again; the
	// missing blob 3 disappears once nothing references it.
	e.put(eventlog.ActionDelete, other)
	e.put(eventlog.ActionDelete, rkey)
	if got, want := e.candidates(), cids(1, 2); !slices.Equal(got, want) {
		t.Fatalf("candidates %v, want %v", got, want)
	}
	if b := e.get(3); b != nil {
		t.Fatalf("unreferenced missing blob kept: %+v", b)
	}
	// The collector deletes blob 2.
	ev, _ := events.New(e.repo.DID, &events.BlobDeleted{CID: blobCID(2).String(), Reason: "unreferenced"})
	e.append(ev)
	if b := e.get(2); b != nil {
		t.Fatalf("deleted blob kept: %+v", b)
	}
	if got, want := e.candidates(), cids(1); !slices.Equal(got, want) {
		t.Fatalf("candidates %v, want %v", got, want)
	}
	// Quarantine flags the blob.
	ev, _ = events.New(e.repo.DID, &events.BlobQuarantine{CID: blobCID(1).String(), On: true})
	e.append(ev)
	if b := e.get(1); !b.Quarantined {
		t.Fatalf("quarantine: %+v", b)
	}
	// Account deletion drops everything, candidates included.
	e.append(&eventlog.Event{Kind: eventlog.KindAccount, DID: e.repo.DID, Account: &eventlog.Account{Status: "deleted"}})
	if b := e.get(1); b != nil {
		t.Fatalf("blob of a deleted account: %+v", b)
	}
	if got := e.candidates(); len(got) != 0 {
		t.Fatalf("candidates of a deleted account: %v", got)
	}
}

func TestCandidatesCutoffAndOrder(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	e := newEnvAt(t, func() time.Time { return now })
	e.upload(1)
	now = now.Add(time.Minute)
	mid := now.Add(-time.Second)
	e.upload(2)
	cs, err := e.p.Candidates(context.Background(), mid, 10)
	if err != nil || len(cs) != 1 || cs[0].CID != blobCID(1).String() {
		t.Fatalf("before %v: %+v %v", mid, cs, err)
	}
	cs, err = e.p.Candidates(context.Background(), now.Add(time.Minute), 1)
	if err != nil || len(cs) != 1 || cs[0].CID != blobCID(1).String() {
		t.Fatalf("limit 1: %+v %v", cs, err)
	}
}

func TestRefsOf(t *testing.T) {
	rec := map[string]any{
		"a": blobRef(2),
		"b": []any{map[string]any{"x": blobRef(1)}, blobRef(2)},
		"c": "text",
	}
	got := blobs.RefsOf(rec)
	if len(got) != 2 || got[0].CID > got[1].CID {
		t.Fatalf("%+v", got)
	}
	b, err := atdata.MarshalCBOR(rec)
	if err != nil {
		t.Fatal(err)
	}
	if fromCBOR := blobs.RefsOfCBOR(b); !slices.Equal(fromCBOR, got) {
		t.Fatalf("from CBOR %+v, want %+v", fromCBOR, got)
	}
}
