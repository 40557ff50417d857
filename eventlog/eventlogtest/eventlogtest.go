// Package eventlogtest has helpers for tests that need a real log: Open on a
// temp dir, and builders for valid events and random event streams.
package eventlogtest

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/eventlog"
)

// Open opens a log on a fresh t.TempDir() and closes it when the test ends.
// Unless opts sets a Logger, the log's lifecycle messages are discarded.
func Open(t testing.TB, opts *eventlog.Options) *eventlog.Log {
	t.Helper()
	o := eventlog.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := eventlog.Open(t.TempDir(), &o)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// CID returns a deterministic dag-cbor CID derived from s.
func CID(s string) cid.Cid {
	sum := sha256.Sum256([]byte(s))
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.DagCBOR, mh)
}

// DID returns the test DID number i.
func DID(i int) syntax.DID { return syntax.DID(fmt.Sprintf("did:plc:test%020d", i)) }

// Clock hands out strictly increasing TIDs.
type Clock struct{ c *syntax.TIDClock }

// NewClock returns a TID clock.
func NewClock() *Clock { return &Clock{c: syntax.NewTIDClock(0)} }

// Next returns the next TID.
func (c *Clock) Next() syntax.TID { return c.c.Next() }

// Repo tracks one repo's head so that its commits chain correctly.
type Repo struct {
	DID   syntax.DID
	Rev   syntax.TID
	Data  cid.Cid
	Paths map[string]cid.Cid
	n     int
}

// NewRepo returns a repo with no commits.
func NewRepo(did syntax.DID) *Repo { return &Repo{DID: did, Paths: map[string]cid.Cid{}} }

// Commit builds the next valid commit event of r with the given ops, and
// advances r as if it was appended. blockBytes sets the size of its Blocks.
func (r *Repo) Commit(clock *Clock, ops []eventlog.Op, blockBytes int) *eventlog.Event {
	r.n++
	rev := clock.Next()
	data := CID(fmt.Sprintf("%s/data/%d", r.DID, r.n))
	ev := &eventlog.Event{Kind: eventlog.KindCommit, DID: r.DID, Commit: &eventlog.Commit{
		Rev: rev, Since: r.Rev, Commit: CID(fmt.Sprintf("%s/commit/%d", r.DID, r.n)),
		Data: data, PrevData: r.Data, Blocks: make([]byte, blockBytes), Ops: ops,
	}}
	for _, op := range ops {
		if op.Action == eventlog.ActionDelete {
			delete(r.Paths, op.Path)
		} else {
			r.Paths[op.Path] = op.CID
		}
	}
	r.Rev, r.Data = rev, data
	return ev
}

// RandomOps returns 1..max random ops valid against r's current records.
func (r *Repo) RandomOps(rng *rand.Rand, clock *Clock, max int) []eventlog.Op {
	n := 1 + rng.IntN(max)
	var ops []eventlog.Op
	seen := map[string]bool{}
	for range n {
		var op eventlog.Op
		existing := ""
		for p := range r.Paths {
			if !seen[p] {
				existing = p
				break
			}
		}
		switch a := rng.IntN(3); {
		case a == 0 || existing == "":
			op = eventlog.Op{Action: eventlog.ActionCreate, Path: "app.bsky.feed.post/" + clock.Next().String()}
			op.CID = CID(op.Path + "/v0")
		case a == 1:
			op = eventlog.Op{Action: eventlog.ActionUpdate, Path: existing, Prev: r.Paths[existing]}
			op.CID = CID(fmt.Sprintf("%s/v%d", existing, rng.IntN(1<<30)))
		default:
			op = eventlog.Op{Action: eventlog.ActionDelete, Path: existing, Prev: r.Paths[existing]}
		}
		if seen[op.Path] {
			continue
		}
		seen[op.Path] = true
		ops = append(ops, op)
	}
	return ops
}

// Stream generates a random but valid stream of events over several repos:
// commits, syncs, identity, account and private events.
type Stream struct {
	Rng   *rand.Rand
	Clock *Clock
	Repos []*Repo
	next  int
}

// NewStream returns a stream over n repos seeded with seed.
func NewStream(seed uint64, n int) *Stream {
	s := &Stream{Rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), Clock: NewClock()}
	for i := range n {
		s.Repos = append(s.Repos, NewRepo(DID(i)))
	}
	return s
}

// Next returns the next event of the stream.
func (s *Stream) Next() *eventlog.Event {
	r := s.Repos[s.Rng.IntN(len(s.Repos))]
	switch k := s.Rng.IntN(20); {
	case k < 14 || r.Rev == "":
		return r.Commit(s.Clock, r.RandomOps(s.Rng, s.Clock, 4), s.Rng.IntN(64))
	case k < 15:
		rev := s.Clock.Next()
		r.Rev = rev
		r.n++
		r.Data = CID(fmt.Sprintf("%s/data/%d", r.DID, r.n))
		return &eventlog.Event{Kind: eventlog.KindSync, DID: r.DID, Sync: &eventlog.Sync{
			Rev: rev, Commit: CID(fmt.Sprintf("%s/commit/%d", r.DID, r.n)), Data: r.Data, Blocks: []byte{1, 2, 3}}}
	case k < 17:
		return &eventlog.Event{Kind: eventlog.KindIdentity, DID: r.DID, Identity: &eventlog.Identity{
			Handle: syntax.Handle(fmt.Sprintf("u%d.test", s.Rng.IntN(1000)))}}
	case k < 19:
		active := s.Rng.IntN(2) == 0
		status := ""
		if !active {
			status = "deactivated"
		}
		return &eventlog.Event{Kind: eventlog.KindAccount, DID: r.DID, Account: &eventlog.Account{Active: active, Status: status}}
	default:
		return &eventlog.Event{Kind: eventlog.KindPrivate, DID: r.DID, Private: &eventlog.Private{
			Type: "test.secret", Secret: s.Rng.IntN(2) == 0, Data: []byte(fmt.Sprintf("secret-%d", s.Rng.IntN(1e9)))}}
	}
}

// DIDs returns the stream's current repos.
func (s *Stream) DIDs() []syntax.DID {
	out := make([]syntax.DID, len(s.Repos))
	for i, r := range s.Repos {
		out[i] = r.DID
	}
	return out
}

// Replace forgets the repo did (its account was deleted) and puts a fresh
// repo with a new DID in its place.
func (s *Stream) Replace(did syntax.DID) {
	for i, r := range s.Repos {
		if r.DID == did {
			s.next++
			s.Repos[i] = NewRepo(syntax.DID(fmt.Sprintf("did:plc:new%019d", s.next)))
		}
	}
}
