package eventlog

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Stored values: what the log keeps under each seq (a format byte and its
// body, secret private data still sealed). Backups ship them as they are,
// so a backup holds no secret in clear and restores byte for byte.

// TombstoneValue is the stored value of a purged or filled seq.
func TombstoneValue() []byte { return []byte{formatTombstone} }

// IsTombstone reports whether a stored value is a tombstone.
func IsTombstone(val []byte) bool { return len(val) == 1 && val[0] == formatTombstone }

// DecodeStored parses a stored value without opening sealed private data
// (Private.Data of a Secret payload stays sealed). A tombstone decodes as
// KindTombstone with no payload. Seq is left zero.
func DecodeStored(val []byte) (*Event, error) {
	ev := &Event{}
	if err := decodeValue(val, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// EncodeStored renders e as a stored value; Secret private data must
// already be sealed (tests and tools that build stored values).
func EncodeStored(e *Event) ([]byte, error) {
	if e.Kind == KindTombstone {
		return TombstoneValue(), nil
	}
	return encodeValue(e)
}

// RawIterator walks durable events as stored, in seq order: the shipper's
// view of the log (no decoding, nothing opened).
type RawIterator struct {
	cursor
	next Seq
	seq  Seq
	val  []byte
}

// IterRaw returns an iterator over the stored values of the durable events
// with Seq > after, as the log stood when IterRaw was called. It returns
// ErrFutureCursor when after is past the durable head.
func (l *Log) IterRaw(ctx context.Context, after Seq) (*RawIterator, error) {
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
	return &RawIterator{cursor: cursor{it: it}, next: after + 1}, nil
}

// Next advances to the next event and reports whether there is one. A
// missing seq is an error (ErrCorrupt), never skipped.
func (it *RawIterator) Next() bool {
	if !it.step() {
		it.val = nil
		return false
	}
	seq, valid := seqOfEventKey(it.it.Key())
	if !valid || seq != it.next {
		it.err = fmt.Errorf("%w: expected seq %d, found key %x", ErrCorrupt, it.next, it.it.Key())
		return false
	}
	val, err := it.it.ValueAndErr()
	if err != nil {
		it.err = fmt.Errorf("seq %d: %w", seq, err)
		return false
	}
	if len(val) == 0 {
		it.err = fmt.Errorf("%w: seq %d: empty value", ErrCorrupt, seq)
		return false
	}
	it.seq, it.val = seq, val
	it.next++
	return true
}

// Seq returns the current event's seq.
func (it *RawIterator) Seq() Seq { return it.seq }

// Value returns the current event's stored value. It is valid until the
// next call to Next: copy it to keep it.
func (it *RawIterator) Value() []byte { return it.val }

// Err returns the error that stopped the iteration, if any.
func (it *RawIterator) Err() error { return it.err }

// Close releases the iterator and returns any accumulated error.
func (it *RawIterator) Close() error { return it.close() }
