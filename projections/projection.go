package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/pdslog/pdslog/eventlog"
)

// ErrGap is returned by Apply when the batch does not continue the cursor.
var ErrGap = errors.New("projections: events do not continue the cursor")

// ErrUnknownProjection is returned for a name no projection has.
var ErrUnknownProjection = errors.New("projections: unknown projection")

// Source is the part of the log projections read. *eventlog.Log satisfies it.
type Source interface {
	Head() eventlog.Seq
	Iter(ctx context.Context, after eventlog.Seq) (*eventlog.Iterator, error)
	Wait(ctx context.Context, after eventlog.Seq) (eventlog.Seq, error)
}

// Projection is state derived from the log.
type Projection interface {
	// Name is stable: it names the projection in logs, metrics and the CLI.
	Name() string
	// Cursor returns the last seq whose effects are stored.
	Cursor(ctx context.Context) (eventlog.Seq, error)
	// Apply applies a batch of consecutive events. Events at or below the
	// cursor are skipped (re-applying is a no-op); the first newer one must
	// be cursor+1, else ErrGap and nothing is written. Effects and the new
	// cursor are written atomically.
	Apply(ctx context.Context, evs []*eventlog.Event) error
	// Reset drops all state; Cursor is 0 afterwards.
	Reset(ctx context.Context) error
}

// Status is a projection's position relative to the log.
type Status struct {
	Name   string
	Cursor eventlog.Seq
	Head   eventlog.Seq
}

// Lag is how many events the projection is behind.
func (s Status) Lag() uint64 {
	if s.Head < s.Cursor {
		return 0
	}
	return uint64(s.Head - s.Cursor)
}

// newEvents returns the part of evs after cursor, checking it continues it.
func newEvents(cursor eventlog.Seq, evs []*eventlog.Event) ([]*eventlog.Event, error) {
	i := 0
	for i < len(evs) && evs[i].Seq <= cursor {
		i++
	}
	evs = evs[i:]
	for j, ev := range evs {
		if want := cursor + 1 + eventlog.Seq(j); ev.Seq != want {
			return nil, fmt.Errorf("%w: got seq %d, want %d", ErrGap, ev.Seq, want)
		}
	}
	return evs, nil
}
