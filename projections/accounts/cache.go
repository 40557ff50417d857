package accounts

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
)

// maxCached bounds the account cache; past it the cache starts over.
const maxCached = 100_000

// accountCache keeps decoded accounts for Get, which every authenticated
// request and every write makes. Entries are valid for one generation; a
// batch that may change any account (a private, identity or account event)
// starts a new one once it is committed. An entry is stamped with the
// generation read before its bytes were, so an entry filled from bytes a
// concurrent batch replaced is already stale.
type accountCache struct {
	gen atomic.Uint64
	mu  sync.RWMutex
	m   map[syntax.DID]cachedAccount
}

type cachedAccount struct {
	gen  uint64
	acct Account
}

func (c *accountCache) get(did syntax.DID) (*Account, bool) {
	g := c.gen.Load()
	c.mu.RLock()
	e, ok := c.m[did]
	c.mu.RUnlock()
	if !ok || e.gen != g {
		return nil, false
	}
	a := e.acct
	return &a, true
}

func (c *accountCache) put(did syntax.DID, gen uint64, a *Account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = make(map[syntax.DID]cachedAccount)
	}
	c.m[did] = cachedAccount{gen: gen, acct: *a}
}

func (c *accountCache) invalidate() { c.gen.Add(1) }

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
		p.cache.invalidate()
	}
	return err
}

// Reset implements projections.Projection.
func (p *Projection) Reset(ctx context.Context) error {
	err := p.KV.Reset(ctx)
	p.cache.invalidate()
	return err
}
