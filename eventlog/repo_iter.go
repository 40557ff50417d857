package eventlog

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2"
)

// RepoIterator walks one account's durable events in seq order, through
// the log's per-account index. Purged events are not visited.
type RepoIterator struct {
	cursor
	l      *Log
	did    syntax.DID
	prefix int
	ev     *Event
}

// IterRepo returns an iterator over did's durable events with Seq > after,
// as they stood when IterRepo was called. Unlike Iter it does not refuse a
// cursor past the head: there is simply nothing to visit.
func (l *Log) IterRepo(ctx context.Context, did syntax.DID, after Seq) (*RepoIterator, error) {
	if l.isClosed() {
		return nil, ErrClosed
	}
	head := l.Head()
	lower := repoKey(did, after+1)
	upper := repoKey(did, head+1)
	if after >= head {
		upper = lower
	}
	it, err := l.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("iter repo: %w", err)
	}
	return &RepoIterator{cursor: cursor{it: it}, l: l, did: did, prefix: len(repoPrefix(did))}, nil
}

// Next advances to the account's next event and reports whether there is one.
func (it *RepoIterator) Next() bool {
	if !it.step() {
		it.ev = nil
		return false
	}
	k := it.it.Key()
	if len(k) != it.prefix+8 {
		it.err = fmt.Errorf("%w: repo index key %x", ErrCorrupt, k)
		return false
	}
	seq := Seq(binary.BigEndian.Uint64(k[it.prefix:]))
	ev, err := it.l.Get(context.Background(), seq)
	if err != nil {
		it.err = err
		return false
	}
	if ev.Kind == KindTombstone {
		// Purged after the iterator was opened.
		return it.Next()
	}
	if ev.DID != it.did {
		it.err = fmt.Errorf("%w: repo index of %s points at seq %d of %s", ErrCorrupt, it.did, seq, ev.DID)
		return false
	}
	it.ev = ev
	return true
}

// Event returns the current event. The caller owns it.
func (it *RepoIterator) Event() *Event { return it.ev }

// Err returns the error that stopped the iteration, if any.
func (it *RepoIterator) Err() error { return it.err }

// Close releases the iterator and returns any accumulated error. Calling
// it again is safe and returns the same error.
func (it *RepoIterator) Close() error { return it.close() }
