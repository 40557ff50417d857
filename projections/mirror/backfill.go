package mirror

import (
	"context"
	"fmt"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/mirror/d1"
)

// A mirror that had already passed record takedowns when migration 0003
// made record_takedown has a mirror_backfill row: it reads the log again
// from its row's cursor up to upto for the takedown rows alone, then goes
// on from its own cursor. Meanwhile the Worker sends getRecord and
// listRecords to the origin.
//
// The record rows are then newer than the events read again, so a
// takedown applies to a record the mirror holds now (whenever it was last
// written), and a later deletion or creation of the record at that path
// ends it: had the record existed at the takedown, a creation could not
// come before a deletion; had it not, the takedown changed nothing.

// backfill is a pending mirror_backfill row.
type backfill struct {
	upto, cursor eventlog.Seq
	down         map[string]bool // URIs with a takedown row (read, or written by the backfill)
}

// tmplTakedownAgain is tmplTakedown for a backfill: any record at the path.
var tmplTakedownAgain = &template{table: tRecord, head: "INSERT INTO record_takedown (uri, did, seq) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM record WHERE uri = ?)" +
	" ON CONFLICT (uri) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > record_takedown.seq"}

// tmplTakedownsOfDeleted ends, for the backfill, the takedowns of an
// account deleted after them.
var tmplTakedownsOfDeleted = &template{table: tRecord, head: "DELETE FROM record_takedown WHERE did = ? AND seq < ?"}

// loadBackfill reads the mirror's mirror_backfill row, if any, and the
// takedown rows already written.
func (m *Mirror) loadBackfill(ctx context.Context, rows []map[string]any) error {
	m.fill = nil
	if len(rows) == 0 {
		return nil
	}
	upto, err := d1.Int(rows[0]["upto"])
	if err != nil {
		return fmt.Errorf("mirror: read mirror_backfill: %w", err)
	}
	cursor, err := d1.Int(rows[0]["cursor"])
	if err != nil {
		return fmt.Errorf("mirror: read mirror_backfill: %w", err)
	}
	res, err := m.o.D1.Batch(ctx, []d1.Statement{{SQL: "SELECT uri FROM record_takedown"}})
	if err != nil {
		return fmt.Errorf("mirror: read record_takedown: %w", err)
	}
	f := &backfill{upto: max(eventlog.Seq(upto), m.cursor), cursor: eventlog.Seq(cursor), down: map[string]bool{}}
	for _, r := range res[0].Rows {
		if uri, ok := r["uri"].(string); ok {
			f.down[uri] = true
		}
	}
	m.fill = f
	m.logger.Info("reading the log again for record takedowns", "seq", f.cursor, "upto", f.upto)
	return nil
}

// backfill applies the events of evs up to the backfill's end for their
// takedown rows, and returns the events after it.
func (m *Mirror) backfill(ctx context.Context, evs []*eventlog.Event) ([]*eventlog.Event, error) {
	f := m.fill
	i := 0
	for i < len(evs) && evs[i].Seq <= f.cursor {
		i++
	}
	evs = evs[i:]
	n := 0
	for n < len(evs) && evs[n].Seq <= f.upto {
		if want := f.cursor + 1 + eventlog.Seq(n); evs[n].Seq != want {
			return nil, fmt.Errorf("%w: got seq %d, want %d", projections.ErrGap, evs[n].Seq, want)
		}
		n++
	}
	req := m.newRequest()
	for _, ev := range evs[:n] {
		ops, err := f.ops(ev)
		if err != nil {
			return nil, err
		}
		if req.stmts > 0 && !req.fits(ops) {
			if err := m.sendFill(ctx, req); err != nil {
				return nil, err
			}
			req = m.newRequest()
		}
		req.add(ops)
		req.last = ev.Seq
	}
	if req.last > f.cursor || f.cursor >= f.upto {
		req.last = max(req.last, f.cursor)
		if err := m.sendFill(ctx, req); err != nil {
			return nil, err
		}
	}
	return evs[n:], nil
}

// ops returns the takedown rows of one event read again.
func (f *backfill) ops(ev *eventlog.Event) ([]op, error) {
	seq := seqs(ev.Seq)
	switch ev.Kind {
	case eventlog.KindCommit:
		var ended []string
		for _, o := range ev.Commit.Ops {
			uri := "at://" + string(ev.DID) + "/" + o.Path
			if o.Action != eventlog.ActionUpdate && f.down[uri] {
				ended = append(ended, uri)
			}
		}
		return clearTakedowns(seq, ended), nil
	case eventlog.KindAccount:
		if ev.Account.Status == "deleted" {
			return []op{{tmpl: tmplTakedownsOfDeleted, args: []string{string(ev.DID), seq}}}, nil
		}
	case eventlog.KindPrivate:
		if ev.Private.Type != events.TypeRecordTakedown {
			return nil, nil
		}
		t := &translated{}
		if err := t.addTakedown(ev); err != nil {
			return nil, err
		}
		for i, o := range t.ops {
			if o.tmpl == tmplTakedown {
				t.ops[i] = op{tmpl: tmplTakedownAgain, args: o.args[:4]}
				f.down[o.args[0]] = true
			}
		}
		return t.ops, nil
	}
	return nil, nil
}

// sendFill sends a backfill request with the statement that moves the
// backfill's cursor (only forward, and only from the cursor the request
// was built on or a later one), or, when it reaches upto, removes the
// mirror_backfill row.
func (m *Mirror) sendFill(ctx context.Context, req *request) error {
	f := m.fill
	stmts, _ := req.statements()
	done := req.last >= f.upto
	if done {
		stmts = append(stmts, d1.Statement{SQL: "DELETE FROM mirror_backfill WHERE name = ? AND cursor >= ? RETURNING cursor",
			Params: []string{m.o.Name, seqs(f.cursor)}})
	} else {
		stmts = append(stmts, d1.Statement{SQL: "UPDATE mirror_backfill SET cursor = ? WHERE name = ? AND cursor >= ? AND cursor <= ? RETURNING cursor",
			Params: []string{seqs(req.last), m.o.Name, seqs(f.cursor), seqs(req.last)}})
	}
	res, err := m.o.D1.Batch(ctx, stmts)
	if err != nil {
		return fmt.Errorf("mirror: record takedowns through seq %d: %w", req.last, err)
	}
	m.requests.Add(1)
	if len(res[len(res)-1].Rows) != 1 {
		return fmt.Errorf("%w: mirror_backfill moved (the batch through seq %d was built on %d)", ErrCursorMoved, req.last, f.cursor)
	}
	f.cursor = req.last
	if done {
		m.fill = nil
		m.logger.Info("record takedowns read again", "seq", req.last)
	}
	return nil
}

// fillStatement reads a mirror's mirror_backfill row.
func fillStatement(name string) d1.Statement {
	return d1.Statement{SQL: "SELECT upto, cursor FROM mirror_backfill WHERE name = ?", Params: []string{name}}
}
