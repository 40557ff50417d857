package eventlog

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Iterator walks events in seq order. It sees the log as it was durable when
// Iter was called; use Wait and a new Iter to follow the log.
type Iterator struct {
	cursor
	l    *Log
	ev   *Event
	next Seq // seq the next event must have
}

// Iter returns an iterator over the durable events with Seq > after.
// It returns ErrFutureCursor when after is past the durable head.
func (l *Log) Iter(ctx context.Context, after Seq) (*Iterator, error) {
	if l.isClosed() {
		return nil, ErrClosed
	}
	head := l.Head()
	if after > head {
		return nil, fmt.Errorf("%w: %d > head %d", ErrFutureCursor, after, head)
	}
	it, err := l.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: eventKey(after + 1),
		UpperBound: eventKey(head + 1),
	})
	if err != nil {
		return nil, fmt.Errorf("iter: %w", err)
	}
	return &Iterator{cursor: cursor{it: it}, l: l, next: after + 1}, nil
}

// Next advances to the next event and reports whether there is one.
func (it *Iterator) Next() bool {
	if !it.step() {
		it.ev = nil
		return false
	}
	seq, valid := seqOfEventKey(it.it.Key())
	if !valid || seq != it.next {
		it.err = fmt.Errorf("%w: expected seq %d, found key %x", ErrCorrupt, it.next, it.it.Key())
		return false
	}
	val, err := it.it.ValueAndErr()
	var ev *Event
	if err == nil {
		ev, err = it.l.decode(val)
	}
	if err != nil {
		it.err = fmt.Errorf("seq %d: %w", seq, err)
		return false
	}
	ev.Seq = seq
	it.ev = ev
	it.next++
	return true
}

// Event returns the current event. The caller owns it.
func (it *Iterator) Event() *Event { return it.ev }

// Err returns the error that stopped the iteration, if any.
func (it *Iterator) Err() error { return it.err }

// Close releases the iterator and returns any accumulated error. Calling
// it again is safe and returns the same error.
func (it *Iterator) Close() error { return it.close() }
