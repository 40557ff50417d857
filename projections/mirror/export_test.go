package mirror

import (
	"context"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/mirror/d1"
)

// ReplayRows sends the D1 rows of every event of l again, in order, as a
// mirror replaying the whole log over its own rows would (R2 aside, and
// without moving the cursor).
func ReplayRows(ctx context.Context, db *d1.Client, l *eventlog.Log, inline int) error {
	it, err := l.Iter(ctx, 0)
	if err != nil {
		return err
	}
	defer it.Close()
	req := newRequest(DefaultMaxStatements, DefaultMaxRequestBytes)
	send := func() error {
		stmts, _ := req.statements()
		req = newRequest(DefaultMaxStatements, DefaultMaxRequestBytes)
		if len(stmts) == 0 {
			return nil
		}
		_, err := db.Batch(ctx, stmts)
		return err
	}
	for it.Next() {
		t, err := translate(it.Event(), inline)
		if err != nil {
			return err
		}
		for k := range t.ops {
			if !req.fits(t.ops[k : k+1]) {
				if err := send(); err != nil {
					return err
				}
			}
			req.add(t.ops[k : k+1])
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	return send()
}
