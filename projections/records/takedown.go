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
	if _, down, err := p.Takedown(ctx, did, coll, rkey); err != nil {
		return nil, err
	} else if down {
		return nil, ErrNotFound
	}
	return p.Get(ctx, did, coll, rkey)
}

// hasTakedowns reports whether any record of did's repo is taken down
// (so List only looks records up when one may be).
func (p *Projection) hasTakedowns(ctx context.Context, did syntax.DID) (bool, error) {
	found := false
	err := p.Space.Scan(ctx, takedownPrefix(did), nil, false, func(_, _ []byte) error {
		found = true
		return io.EOF
	})
	return found, err
}
