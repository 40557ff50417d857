package accounts

import (
	"context"

	"github.com/pdslog/pdslog/eventlog"
)

// touchesAccounts reports whether any of evs may change an Account.
func touchesAccounts(evs []*eventlog.Event) bool {
	for _, ev := range evs {
		switch ev.Kind {
		case eventlog.KindPrivate, eventlog.KindIdentity, eventlog.KindAccount:
			return true
		}
	}
	return false
}

// Apply implements projections.Projection: the batch as the KV applies
// it, then a new cache generation if it may have changed an account.
func (p *Projection) Apply(ctx context.Context, evs []*eventlog.Event) error {
	err := p.KV.Apply(ctx, evs)
	if touchesAccounts(evs) {
		p.cache.Invalidate()
	}
	return err
}

// Reset implements projections.Projection.
func (p *Projection) Reset(ctx context.Context) error {
	err := p.KV.Reset(ctx)
	p.cache.Invalidate()
	return err
}
