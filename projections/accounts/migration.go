package accounts

import (
	"context"
	"encoding/binary"
	"io"
	"strconv"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
)

// Keys: 'r' did -> seq of the key.reserved event for did (the key stays
// sealed in the log); 'x' did -> unix ns of its scheduled deletion;
// 'X' be64(unix ns) did -> "" (deletions by time).
func reservedKey(did syntax.DID) []byte { return append([]byte{'r'}, did...) }
func deleteAfterKey(did syntax.DID) []byte {
	return append([]byte{'x'}, did...)
}
func dueKey(at int64, did syntax.DID) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{'X'}, uint64(at)), did...)
}

// ReservedKey returns the seq of the signing key reserved for did, or
// ErrNotFound.
func (p *Projection) ReservedKey(ctx context.Context, did syntax.DID) (eventlog.Seq, error) {
	b, ok, err := p.Space.Get(reservedKey(did))
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrNotFound
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	return eventlog.Seq(n), err
}

// DueDeletions lists the accounts whose scheduled deletion is at or
// before now.
func (p *Projection) DueDeletions(ctx context.Context, now time.Time) ([]syntax.DID, error) {
	var out []syntax.DID
	limit := uint64(now.UnixNano())
	err := p.Space.Scan(ctx, []byte{'X'}, nil, false, func(k, _ []byte) error {
		if len(k) < 9 || binary.BigEndian.Uint64(k[1:9]) > limit {
			return io.EOF
		}
		out = append(out, syntax.DID(k[9:]))
		return nil
	})
	return out, err
}

func applyKeyReserved(w *projections.Writer, ev *eventlog.Event) error {
	return w.Set(reservedKey(ev.DID), []byte(strconv.FormatUint(uint64(ev.Seq), 10)))
}

func applyDeletionScheduled(w *projections.Writer, ev *eventlog.Event, _ *Account, d *events.DeletionScheduled) (bool, error) {
	t, err := time.Parse(time.RFC3339Nano, d.At)
	if err != nil {
		return false, nil // a malformed time schedules nothing
	}
	if err := unschedule(w, ev.DID); err != nil {
		return false, err
	}
	at := t.UnixNano()
	if err := w.Set(deleteAfterKey(ev.DID), []byte(strconv.FormatInt(at, 10))); err != nil {
		return false, err
	}
	return false, w.Set(dueKey(at, ev.DID), nil)
}

// unschedule drops did's scheduled deletion.
func unschedule(w *projections.Writer, did syntax.DID) error {
	b, ok, err := w.Get(deleteAfterKey(did))
	if err != nil || !ok {
		return err
	}
	if at, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		if err := w.Delete(dueKey(at, did)); err != nil {
			return err
		}
	}
	return w.Delete(deleteAfterKey(did))
}
