package commit

import (
	"context"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// SyncEvent returns a #sync event declaring head as did's current state:
// a CAR holding only the signed commit block, read from src. The reference
// PDS emits one after an account's first commit and on activation, so a
// relay that missed history can resynchronise from the commit alone.
func SyncEvent(ctx context.Context, did syntax.DID, head eventlog.RepoHead, src mst.BlockSource) (*eventlog.Event, error) {
	b, err := src.Get(ctx, head.Commit)
	if err != nil {
		return nil, fmt.Errorf("sync event: commit block: %w", err)
	}
	slice, err := car.Marshal([]cid.Cid{head.Commit}, car.Block{CID: head.Commit, Data: b})
	if err != nil {
		return nil, err
	}
	return &eventlog.Event{Kind: eventlog.KindSync, DID: did,
		Sync: &eventlog.Sync{Rev: head.Rev, Commit: head.Commit, Data: head.Data, Blocks: slice}}, nil
}

// SyncAfter returns the #sync event that re-announces the head set by the
// commit event ev, taking the commit block from ev's own CAR slice, so it
// can be appended in the same batch as ev.
func SyncAfter(ev *eventlog.Event) (*eventlog.Event, error) {
	c := ev.Commit
	if c == nil {
		return nil, fmt.Errorf("sync event: %s event has no commit", ev.Kind)
	}
	blocks, err := car.BlockMap(c.Blocks, nil)
	if err != nil {
		return nil, fmt.Errorf("sync event: %w", err)
	}
	return SyncEvent(context.Background(), ev.DID, eventlog.RepoHead{Rev: c.Rev, Commit: c.Commit, Data: c.Data}, mst.MemBlocks(blocks))
}
