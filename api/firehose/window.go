package firehose

import (
	"context"
	"time"

	"github.com/pdslog/pdslog/eventlog"
)

// windowStart applies the backfill window to a cursor at or below head.
// If the first event after cursor is older than cutoff, it returns the
// position just before the first event at or after cutoff (head when none
// is) and outdated = true; otherwise cursor itself.
//
// Event times never decrease along the log, so the boundary is found by
// binary search over seqs with Get. Tombstones carry no time: a probe that
// lands on one reads forward to the next timed event (a run of tombstones
// is skipped by the firehose anyway, so starting anywhere inside it is the
// same).
func (h *Handler) windowStart(ctx context.Context, cursor, head eventlog.Seq, cutoff time.Time) (eventlog.Seq, bool, error) {
	first, err := h.timedFrom(ctx, cursor+1, head)
	if err != nil || first == nil || !first.Time.Time().Before(cutoff) {
		return cursor, false, err
	}
	// Invariant: every timed event at or below lo is older than cutoff; the
	// first timed event at or after hi (if any) is not.
	lo, hi := first.Seq, head+1
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ev, err := h.timedFrom(ctx, mid, hi-1)
		if err != nil {
			return 0, false, err
		}
		switch {
		case ev == nil: // [mid, hi) holds only tombstones
			hi = mid
		case ev.Time.Time().Before(cutoff):
			lo = ev.Seq
		default: // inside the window; [mid, ev.Seq) holds only tombstones
			hi = mid
		}
	}
	return lo, true, nil
}

// timedFrom returns the first event with seq in [from, to] that carries a
// time (is not a tombstone), or nil if there is none.
func (h *Handler) timedFrom(ctx context.Context, from, to eventlog.Seq) (*eventlog.Event, error) {
	if from > to {
		return nil, nil
	}
	ev, err := h.log.Get(ctx, from)
	if err != nil {
		return nil, err
	}
	if ev.Kind != eventlog.KindTombstone && ev.Time != "" {
		return ev, nil
	}
	it, err := h.log.Iter(ctx, from)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.Next() {
		ev := it.Event()
		if ev.Seq > to {
			return nil, nil
		}
		if ev.Kind != eventlog.KindTombstone && ev.Time != "" {
			return ev, nil
		}
	}
	return nil, it.Close()
}
