// Package blocks is the projection of every repo's blocks (signed commits,
// records, MST nodes) by CID, taken from the CAR slices of #commit and #sync
// events. It is the block storage the MST loads lazily from, per repo, and
// it answers getBlocks. A deleted account's blocks go with it.
package blocks

import (
	"context"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
	"github.com/pdslog/pdslog/projections"
)

// Name is the projection's name.
const Name = "blocks"

// Projection is the blocks projection on a projections.Store.
//
// Keys: did 0x00 cid-bytes -> block bytes.
type Projection struct{ *projections.KV }

// New returns the blocks projection stored in s.
func New(s *projections.Store) *Projection { return &Projection{projections.NewKV(s, Name, apply)} }

var _ projections.Projection = (*Projection)(nil)

func repoPrefix(did syntax.DID) []byte { return append([]byte(did), 0) }

func key(did syntax.DID, c cid.Cid) []byte { return append(repoPrefix(did), c.Bytes()...) }

func apply(w *projections.Writer, ev *eventlog.Event) error {
	var slice []byte
	switch ev.Kind {
	case eventlog.KindCommit:
		slice = ev.Commit.Blocks
	case eventlog.KindSync:
		slice = ev.Sync.Blocks
	case eventlog.KindAccount:
		if ev.Account.Status == "deleted" {
			return w.DeletePrefix(repoPrefix(ev.DID))
		}
		return nil
	default:
		return nil
	}
	k := repoPrefix(ev.DID)
	n := len(k)
	return car.EachBlock(slice, func(c, data []byte) error {
		k = append(k[:n], c...)
		return w.Set(k, data)
	})
}

// Get returns a block of did's repo, or an error wrapping mst.ErrMissingBlock.
func (p *Projection) Get(ctx context.Context, did syntax.DID, c cid.Cid) ([]byte, error) {
	b, ok, err := p.Space.Get(key(did, c))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s in %s", mst.ErrMissingBlock, c, did)
	}
	return b, nil
}

// Source returns did's blocks as an mst.BlockSource.
func (p *Projection) Source(did syntax.DID) mst.BlockSource { return source{p: p, did: did} }

type source struct {
	p   *Projection
	did syntax.DID
}

func (s source) Get(ctx context.Context, c cid.Cid) ([]byte, error) { return s.p.Get(ctx, s.did, c) }

// Count returns how many blocks of did's repo are stored.
func (p *Projection) Count(ctx context.Context, did syntax.DID) (int, error) {
	n := 0
	err := p.Space.Scan(ctx, repoPrefix(did), nil, false, func(_, _ []byte) error { n++; return nil })
	return n, err
}
