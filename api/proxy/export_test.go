package proxy

import (
	"context"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// LocalSinceCount exposes localSince to the external tests: how many of
// did's records are newer than rev, and how many of those are posts.
func (p *Proxy) LocalSinceCount(ctx context.Context, did syntax.DID, rev string) (records, posts int, err error) {
	l, err := p.localSince(ctx, did, rev)
	if err != nil {
		return 0, 0, err
	}
	return l.count, len(l.posts), nil
}
