// Package committest generates streams of real, signed repo commits (and
// account, identity and private events) for tests of anything that reads
// commit contents: blocks, records, the firehose.
package committest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// Repo is a repo whose commits the stream builds.
type Repo struct {
	DID syntax.DID
	Key atcrypto.PrivateKeyExportable
	// KeyLogged is set once the repo's SigningKeyEvent was returned.
	KeyLogged bool
	Blocks    mst.MemBlocks
	Head      *eventlog.RepoHead
	Records   map[string]cid.Cid
}

// Stream builds valid events over a set of repos. Every event it returns is
// assumed appended (the next commit of a repo builds on the previous one).
type Stream struct {
	rng     *rand.Rand
	builder *commit.Builder
	Repos   []*Repo
	next    int
	tid     *syntax.TIDClock
}

// NewStream returns a stream over n repos.
func NewStream(seed uint64, n int) *Stream {
	s := &Stream{rng: rand.New(rand.NewPCG(seed, 99)), builder: commit.NewBuilder(nil), tid: syntax.NewTIDClock(3)}
	for range n {
		s.Repos = append(s.Repos, s.newRepo())
	}
	return s
}

func (s *Stream) newRepo() *Repo {
	s.next++
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		panic(err)
	}
	return &Repo{DID: syntax.DID(fmt.Sprintf("did:plc:ct%020d", s.next)), Key: key, Blocks: mst.MemBlocks{}, Records: map[string]cid.Cid{}}
}

// DIDs returns the current repos.
func (s *Stream) DIDs() []syntax.DID {
	out := make([]syntax.DID, len(s.Repos))
	for i, r := range s.Repos {
		out[i] = r.DID
	}
	return out
}

// Replace forgets did and puts a fresh repo in its place.
func (s *Stream) Replace(did syntax.DID) {
	for i, r := range s.Repos {
		if r.DID == did {
			s.Repos[i] = s.newRepo()
		}
	}
}

var collections = []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow", "com.example.thing"}

// Next returns the next event: mostly commits with 1–4 random writes.
func (s *Stream) Next() *eventlog.Event {
	r := s.Repos[s.rng.IntN(len(s.Repos))]
	if !r.KeyLogged {
		r.KeyLogged = true
		return commit.SigningKeyEvent(r.DID, r.Key)
	}
	switch k := s.rng.IntN(20); {
	case k < 16 || r.Head == nil:
		return s.Commit(r, s.RandomWrites(r, 1+s.rng.IntN(4)))
	case k < 18:
		return &eventlog.Event{Kind: eventlog.KindIdentity, DID: r.DID, Identity: &eventlog.Identity{Handle: syntax.Handle(fmt.Sprintf("u%d.test", s.rng.IntN(100)))}}
	case k < 19:
		active := s.rng.IntN(2) == 0
		status := ""
		if !active {
			status = "deactivated"
		}
		return &eventlog.Event{Kind: eventlog.KindAccount, DID: r.DID, Account: &eventlog.Account{Active: active, Status: status}}
	default:
		return &eventlog.Event{Kind: eventlog.KindPrivate, DID: r.DID, Private: &eventlog.Private{Type: "test.note", Data: []byte("x")}}
	}
}

// RandomWrites returns n writes valid against r's records.
func (s *Stream) RandomWrites(r *Repo, n int) []commit.Write {
	var writes []commit.Write
	used := map[string]bool{}
	for range n {
		var existing []string
		for p := range r.Records {
			if !used[p] {
				existing = append(existing, p)
			}
		}
		a := s.rng.IntN(4)
		if len(existing) == 0 || a < 2 {
			coll := collections[s.rng.IntN(len(collections))]
			w := commit.Write{Action: eventlog.ActionCreate, Collection: syntax.NSID(coll), RKey: syntax.RecordKey(s.tid.Next().String()),
				Record: map[string]any{"text": fmt.Sprintf("hello %d", s.rng.IntN(1e6)), "createdAt": "2026-11-26T12:00:00.000Z"}}
			used[w.Path()] = true
			writes = append(writes, w)
			continue
		}
		p := existing[s.rng.IntN(len(existing))]
		used[p] = true
		coll, rkey, _ := strings.Cut(p, "/")
		w := commit.Write{Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey)}
		if a == 2 {
			w.Action, w.Record = eventlog.ActionUpdate, map[string]any{"text": fmt.Sprintf("edit %d", s.rng.IntN(1e6)), "createdAt": "2026-11-26T12:00:00.000Z"}
		} else {
			w.Action = eventlog.ActionDelete
		}
		writes = append(writes, w)
	}
	return writes
}

// Commit builds r's next commit with writes and advances r as if appended.
func (s *Stream) Commit(r *Repo, writes []commit.Write) *eventlog.Event {
	res, err := s.builder.Build(context.Background(), commit.Repo{DID: r.DID, Head: r.Head, Key: r.Key, Blocks: r.Blocks}, writes)
	if err != nil {
		panic(fmt.Sprintf("committest: build: %v", err))
	}
	_, blocks, err := car.Unmarshal(res.Event.Commit.Blocks, nil)
	if err != nil {
		panic(err)
	}
	for _, b := range blocks {
		r.Blocks[b.CID] = b.Data
	}
	for i, w := range writes {
		if w.Action == eventlog.ActionDelete {
			delete(r.Records, w.Path())
		} else {
			r.Records[w.Path()] = res.Writes[i].CID
		}
	}
	c := res.Event.Commit
	r.Head = &eventlog.RepoHead{Rev: c.Rev, Commit: c.Commit, Data: c.Data}
	return res.Event
}
