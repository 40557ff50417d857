package records

import (
	"context"
	"fmt"
	"io"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
)

// Record takedowns (com.atproto.admin.updateSubjectStatus with a
// strongRef): a record taken down stays in the repo, and in Get (writes
// need it), but Served and List leave it out. The takedown lives beside
// the record and goes with it when the record is deleted, as the
// reference keeps it on the record's row.

func takedownPrefix(did syntax.DID) []byte { return append(repoPrefix(did), 't') }

func takedownKey(did syntax.DID, coll, rkey string) []byte {
	k := append(takedownPrefix(did), coll...)
	return append(append(k, 0), rkey...)
}

// applyPrivate applies the record takedown events; other private events
// change nothing here. A takedown of a record the repo does not hold (any
// more) changes nothing either.
func applyPrivate(w *projections.Writer, ev *eventlog.Event) error {
	if ev.Private.Type != events.TypeRecordTakedown {
		return nil
	}
	var t events.RecordTakedown
	if err := events.Unmarshal(ev.Private.Data, &t); err != nil {
		return fmt.Errorf("%s: %w", ev.Private.Type, err)
	}
	k := takedownKey(ev.DID, t.Collection, t.RKey)
	if !t.Applied {
		return w.Delete(k)
	}
	if _, ok, err := w.Get(recordKey(ev.DID, t.Collection, t.RKey)); err != nil || !ok {
		return err
	}
	return w.Set(k, []byte(t.Ref))
}

// Takedown reports whether a record is taken down, and the takedown's ref.
func (p *Projection) Takedown(ctx context.Context, did syntax.DID, coll syntax.NSID, rkey syntax.RecordKey) (ref string, applied bool, err error) {
	v, ok, err := p.Space.Get(takedownKey(did, coll.String(), rkey.String()))
	if err != nil || !ok {
		return "", false, err
	}
	return string(v), true, nil
}

// Served returns a record as reads serve it: ErrNotFound when it does not
// exist or is taken down.
func (p *Projection) Served(ctx context.Context, did syntax.DID, coll syntax.NSID, rkey syntax.RecordKey) (*Record, error) {
	if any, err := p.hasTakedowns(ctx, did); err != nil {
		return nil, err
	} else if any {
		if _, down, err := p.Takedown(ctx, did, coll, rkey); err != nil {
			return nil, err
		} else if down {
			return nil, ErrNotFound
		}
	}
	return p.Get(ctx, did, coll, rkey)
}

// hasTakedowns reports whether any record of did's repo may be taken
// down, so that reads look takedowns up only then (almost no repo has
// one; the lookup was a fifth of getRecord's cost).
func (p *Projection) hasTakedowns(ctx context.Context, did syntax.DID) (bool, error) {
	if found, ok := p.takedowns.Get(did); ok {
		return found, nil
	}
	gen := p.takedowns.Gen()
	found := false
	err := p.Space.Scan(ctx, takedownPrefix(did), nil, false, func(_, _ []byte) error {
		found = true
		return io.EOF
	})
	if err != nil {
		return false, err
	}
	p.takedowns.Put(did, gen, found)
	return found, nil
}

// addsTakedowns reports whether any of evs may add a takedown.
func addsTakedowns(evs []*eventlog.Event) bool {
	for _, ev := range evs {
		if ev.Kind == eventlog.KindPrivate && ev.Private.Type == events.TypeRecordTakedown {
			return true
		}
	}
	return false
}

// Apply implements projections.Projection: the batch as the KV applies
// it, then a new takedown cache generation if it may have added one.
func (p *Projection) Apply(ctx context.Context, evs []*eventlog.Event) error {
	err := p.KV.Apply(ctx, evs)
	if addsTakedowns(evs) {
		p.takedowns.Invalidate()
	}
	return err
}

// Reset implements projections.Projection.
func (p *Projection) Reset(ctx context.Context) error {
	err := p.KV.Reset(ctx)
	p.takedowns.Invalidate()
	return err
}
