package pds

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/projections/accounts"
)

// claims holds the handles, emails and invite uses of signups and handle
// changes that have passed their checks but not yet reached the log. The
// checks read the accounts projection, which only learns of a new account
// once its events are appended; without claims, two concurrent signups
// could both see a handle (or the last use of an invite) as free. A claim is
// taken before any outside effect (the PLC operation) and released after
// the append has been applied, so the projection answers from then on.
type claims struct {
	mu   sync.Mutex
	held map[string]int
}

func handleClaim(h syntax.Handle) string { return "handle:" + strings.ToLower(h.String()) }
func emailClaim(e string) string         { return "email:" + strings.ToLower(e) }
func inviteClaim(code string) string     { return "invite:" + code }

// take runs check under the claims lock, giving it the number of claims
// already held on each key, and on success holds every key until release
// is called. Check must return the client-facing error for a conflict.
func (c *claims) take(check func(pending func(key string) int) error, keys ...string) (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		c.held = map[string]int{}
	}
	if err := check(func(k string) int { return c.held[k] }); err != nil {
		return nil, err
	}
	for _, k := range keys {
		c.held[k]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, k := range keys {
				if c.held[k]--; c.held[k] <= 0 {
					delete(c.held, k)
				}
			}
		})
	}, nil
}

// handleFree reports ErrHandleNotAvailable when h is claimed or belongs to
// an account other than self.
func (p *PDS) handleFree(ctx context.Context, h syntax.Handle, self syntax.DID, pending func(string) int) error {
	if pending(handleClaim(h)) > 0 {
		return errorf(ErrHandleNotAvailable, "Handle already taken: %s", h)
	}
	a, err := p.Accounts.ByHandle(ctx, h)
	switch {
	case err == nil && a.DID != self:
		return errorf(ErrHandleNotAvailable, "Handle already taken: %s", h)
	case err != nil && !errors.Is(err, accounts.ErrNotFound):
		return err
	}
	return nil
}
