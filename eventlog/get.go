package eventlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Get returns the durable event at seq (a tombstone for a purged one), with
// secret private data opened. It returns ErrNotFound for a seq past the head.
func (l *Log) Get(ctx context.Context, seq Seq) (*Event, error) {
	if l.isClosed() {
		return nil, ErrClosed
	}
	if seq == 0 || seq > l.Head() {
		return nil, fmt.Errorf("%w: seq %d (head %d)", ErrNotFound, seq, l.Head())
	}
	val, closer, err := l.db.Get(eventKey(seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: seq %d missing below the head", ErrCorrupt, seq)
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	ev, err := l.decode(val)
	if err != nil {
		return nil, fmt.Errorf("seq %d: %w", seq, err)
	}
	ev.Seq = seq
	return ev, nil
}

// decode parses a stored value and opens sealed private data.
func (l *Log) decode(val []byte) (*Event, error) {
	ev := &Event{}
	if err := decodeValue(val, ev); err != nil {
		return nil, err
	}
	if ev.Private != nil && ev.Private.Secret {
		data, err := l.sealer.open(string(ev.DID), ev.Private.Type, ev.Private.Data)
		if err != nil {
			return nil, err
		}
		ev.Private.Data = data
	}
	return ev, nil
}
