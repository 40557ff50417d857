package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
)

// request is one Append or Purge waiting for the committer.
type request struct {
	evs    []*Event
	vals   [][]byte // encoded values, parallel to evs
	purge  *purgeReq
	bytes  int
	done   chan result // buffered; receives exactly one result
	failed error       // set by the committer when the request is refused
}

type result struct {
	last Seq
	n    int // purge: events tombstoned
	err  error
}

type purgeReq struct {
	did    syntax.DID
	before Seq
	n      int
}

// group is one Pebble batch on its way to durability.
type group struct {
	b     *pebble.Batch
	last  Seq
	reqs  []*request
	lasts []Seq
	start time.Time
	count int
}

// Append writes evs atomically, in order, assigning each its Seq, and
// returns the last seq once all of them are durable. Events may be about
// different repos. A commit must name its repo's current rev as Since (""
// for the first commit) and carry a greater Rev, or nothing is written and
// ErrRevConflict is returned; a sync must carry a greater Rev. Once
// enqueued the append is not abandoned when ctx ends: its outcome is
// awaited so that the answer is definite.
func (l *Log) Append(ctx context.Context, evs ...*Event) (Seq, error) {
	if len(evs) == 0 {
		return 0, fmt.Errorf("%w: no events", ErrInvalidEvent)
	}
	req := &request{evs: evs, vals: make([][]byte, len(evs)), done: make(chan result, 1)}
	now := syntax.Datetime(l.opts.Now().UTC().Format(syntax.AtprotoDatetimeLayout))
	for i, ev := range evs {
		if err := ev.validate(); err != nil {
			return 0, err
		}
		if ev.Time == "" {
			ev.Time = now
		}
		stored := ev
		if ev.Private != nil && ev.Private.Secret {
			cp := *ev
			cp.Private = &Private{Type: ev.Private.Type, Secret: true,
				Data: l.sealer.seal(string(ev.DID), ev.Private.Type, ev.Private.Data)}
			stored = &cp
		}
		val, err := encodeValue(stored)
		if err != nil {
			return 0, err
		}
		req.vals[i] = val
		req.bytes += len(val)
	}
	if err := ctx.Err(); err != nil {
		return 0, context.Cause(ctx)
	}
	res, err := l.submit(req)
	if err != nil {
		return 0, err
	}
	return res.last, res.err
}

// Purge replaces every event about did with a seq below before by a
// tombstone (its seq stays; readers get KindTombstone), drops did's per-repo
// index and, if it predates before, its head. It returns how many events it
// tombstoned, once that is durable. Used when an account is deleted: the
// deletion event itself (at seq >= before) is kept forever.
func (l *Log) Purge(ctx context.Context, did syntax.DID, before Seq) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, context.Cause(ctx)
	}
	res, err := l.submit(&request{purge: &purgeReq{did: did, before: before}, done: make(chan result, 1)})
	if err != nil {
		return 0, err
	}
	return res.n, res.err
}

func (l *Log) submit(req *request) (result, error) {
	if err := l.err(); err != nil {
		return result{}, err
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return result{}, ErrClosed
	}
	l.reqs <- req
	l.mu.RUnlock()
	return <-req.done, nil
}

func (l *Log) startPipeline() {
	groups := make(chan *group, 64)
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		defer close(groups)
		l.commitLoop(groups)
	}()
	go func() {
		l.syncLoop(groups)
		<-committerDone
		close(l.done)
	}()
}

// commitLoop is the only writer of the log: it takes queued requests, checks
// them, assigns seqs, and applies them to Pebble as one batch per group,
// in seq order, handing each batch to the sync loop.
func (l *Log) commitLoop(groups chan<- *group) {
	for first := range l.reqs {
		reqs := []*request{first}
		n, size := len(first.evs), first.bytes
	drain:
		for n < l.opts.MaxBatchEvents && size < l.opts.MaxBatchBytes {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break drain
				}
				reqs = append(reqs, r)
				n += len(r.evs)
				size += r.bytes
			default:
				break drain
			}
		}
		if err := l.err(); err != nil {
			for _, r := range reqs {
				r.done <- result{err: err}
			}
			continue
		}
		if reqs = l.refuseIfFull(reqs, size); len(reqs) == 0 {
			continue
		}
		g := l.build(reqs)
		if g.b.Empty() {
			l.finish(g, nil)
			continue
		}
		if err := l.db.ApplyNoSyncWait(g.b, pebble.Sync); err != nil {
			l.fail(err)
			l.finish(g, l.err())
			continue
		}
		groups <- g
	}
}

// refuseIfFull answers the appends among reqs with ErrDiskFull when
// writing size bytes would eat into the free-space reserve, and returns
// what is left to build. Purges (tiny tombstones that free space later)
// always pass.
func (l *Log) refuseIfFull(reqs []*request, size int) []*request {
	err := l.space.check(size)
	if err == nil {
		return reqs
	}
	keep := reqs[:0]
	for _, r := range reqs {
		if r.purge != nil {
			keep = append(keep, r)
			continue
		}
		r.done <- result{err: err}
	}
	return keep
}

// build checks each request against the heads and writes the accepted ones
// into one batch. A refused request leaves no trace in the batch.
func (l *Log) build(reqs []*request) *group {
	g := &group{b: l.db.NewBatch(), reqs: reqs, lasts: make([]Seq, len(reqs)), start: time.Now()}
	overlay := map[syntax.DID]*RepoHead{} // heads written earlier in this batch; nil = deleted
	for i, r := range reqs {
		if r.purge != nil {
			if err := l.buildPurge(g, r.purge, overlay); err != nil {
				r.failed = err
			}
			continue
		}
		heads := map[syntax.DID]*RepoHead{} // this request's own changes
		var err error
		for j, ev := range r.evs {
			if ev.Kind != KindCommit && ev.Kind != KindSync {
				continue
			}
			var cur *RepoHead
			if h, ok := heads[ev.DID]; ok {
				cur = h
			} else if cur, err = l.currentHead(ev.DID, overlay); err != nil {
				break
			}
			seq := l.next + Seq(j)
			var nh RepoHead
			if nh, err = advanceHead(cur, ev, seq); err != nil {
				break
			}
			heads[ev.DID] = &nh
		}
		if err != nil {
			r.failed = err
			continue
		}
		for j, ev := range r.evs {
			seq := l.next + Seq(j)
			ev.Seq = seq
			_ = g.b.Set(eventKey(seq), r.vals[j], nil)
			_ = g.b.Set(repoKey(ev.DID, seq), nil, nil)
		}
		for did, h := range heads {
			val, err := encodeHead(*h)
			if err != nil {
				panic(err) // encoding a head cannot fail
			}
			_ = g.b.Set(headKey(did), val, nil)
			overlay[did] = h
		}
		l.next += Seq(len(r.evs))
		g.count += len(r.evs)
		g.lasts[i] = l.next - 1
	}
	g.last = l.next - 1
	return g
}

// currentHead returns the repo head as of everything applied so far
// (including batches still syncing and earlier requests of this batch).
func (l *Log) currentHead(did syntax.DID, overlay map[syntax.DID]*RepoHead) (*RepoHead, error) {
	if h, ok := overlay[did]; ok {
		return h, nil
	}
	val, closer, err := l.db.Get(headKey(did))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	h, err := decodeHead(val)
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// advanceHead applies a commit or sync event to the current head.
func advanceHead(cur *RepoHead, ev *Event, seq Seq) (RepoHead, error) {
	var curRev syntax.TID
	if cur != nil {
		curRev = cur.Rev
	}
	switch ev.Kind {
	case KindCommit:
		c := ev.Commit
		if c.Since != curRev {
			return RepoHead{}, fmt.Errorf("%w: %s: commit since %q, head is at %q", ErrRevConflict, ev.DID, c.Since, curRev)
		}
		if c.Rev <= curRev {
			return RepoHead{}, fmt.Errorf("%w: %s: rev %q does not follow %q", ErrRevConflict, ev.DID, c.Rev, curRev)
		}
		var curData cid.Cid
		if cur != nil {
			curData = cur.Data
		}
		if !c.PrevData.Equals(curData) {
			return RepoHead{}, fmt.Errorf("%w: %s: prevData %s, head data is %s", ErrRevConflict, ev.DID, c.PrevData, curData)
		}
		return RepoHead{Rev: c.Rev, Commit: c.Commit, Data: c.Data, Seq: seq}, nil
	default: // KindSync
		s := ev.Sync
		// A #sync may re-announce the current head (the reference emits one
		// after an account's first commit and on activation); otherwise it
		// must move the repo forward.
		if cur != nil && s.Rev == curRev && s.Commit.Equals(cur.Commit) && s.Data.Equals(cur.Data) {
			return RepoHead{Rev: s.Rev, Commit: s.Commit, Data: s.Data, Seq: seq}, nil
		}
		if s.Rev <= curRev {
			return RepoHead{}, fmt.Errorf("%w: %s: sync rev %q does not follow %q", ErrRevConflict, ev.DID, s.Rev, curRev)
		}
		return RepoHead{Rev: s.Rev, Commit: s.Commit, Data: s.Data, Seq: seq}, nil
	}
}

func (l *Log) buildPurge(g *group, p *purgeReq, overlay map[syntax.DID]*RepoHead) error {
	prefix := repoPrefix(p.did)
	upper := append(append([]byte{}, prefix...), 0xff)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+8 {
			continue
		}
		seq := Seq(beUint64(k[len(prefix):]))
		if seq >= p.before {
			break
		}
		_ = g.b.Set(eventKey(seq), []byte{formatTombstone}, nil)
		_ = g.b.Delete(append([]byte{}, k...), nil)
		p.n++
	}
	if err := it.Close(); err != nil {
		return err
	}
	cur, err := l.currentHead(p.did, overlay)
	if err != nil {
		return err
	}
	if cur != nil && cur.Seq < p.before {
		_ = g.b.Delete(headKey(p.did), nil)
		overlay[p.did] = nil
	}
	return nil
}

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// syncLoop waits for each group's WAL sync, in order, then publishes the
// durable watermark and acknowledges the group's requests.
func (l *Log) syncLoop(groups <-chan *group) {
	for g := range groups {
		err := g.b.SyncWait()
		if err != nil {
			l.fail(err)
		}
		if ferr := l.err(); ferr != nil {
			// After a failure nothing is acknowledged, even a batch whose own
			// sync happened to succeed: the watermark never passes the failure.
			l.finish(g, ferr)
			continue
		}
		if g.count > 0 {
			l.publish(g.last)
		}
		if l.opts.OnSync != nil {
			l.opts.OnSync(g.count, time.Since(g.start))
		}
		l.finish(g, nil)
	}
}

// finish answers every request of g (err overrides their outcome) and
// releases the batch.
func (l *Log) finish(g *group, err error) {
	for i, r := range g.reqs {
		switch {
		case err != nil:
			r.done <- result{err: err}
		case r.failed != nil:
			r.done <- result{err: r.failed}
		case r.purge != nil:
			l.notePurge() // durable (or nothing to write) before the caller hears
			r.done <- result{last: g.last, n: r.purge.n}
		default:
			r.done <- result{last: g.lasts[i]}
		}
	}
	_ = g.b.Close()
}
