package sync

import (
	"bytes"
	"context"
	"fmt"
	"io"

	indigomst "github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// cidSet is a set of block CIDs.
type cidSet map[cid.Cid]struct{}

// writtenSince returns the CIDs of the blocks that the repo's commits after
// since (up to head) added to its tree, or full when the whole repo must be
// sent: since is older than the repo's first commit, or a #sync after since
// moved the repo to a tree its commits do not lead to. Revs compare as
// strings (TIDs sort as strings), so since need not be a rev of the repo.
func (h *Handlers) writtenSince(ctx context.Context, did syntax.DID, head eventlog.RepoHead, since syntax.TID) (added cidSet, full bool, err error) {
	added = cidSet{}
	if since >= head.Rev {
		return added, false, nil // only the commit
	}
	it, err := h.PDS.Log.IterRepo(ctx, did, 0)
	if err != nil {
		return nil, false, fmt.Errorf("sync: iterate %s: %w", did, err)
	}
	defer it.Close()
	src := h.PDS.Blocks.Source(did)
	base := false    // a head at or before since was seen
	var data cid.Cid // the tree of the latest head seen
	for it.Next() {
		ev := it.Event()
		if ev.Seq > head.Seq {
			break
		}
		switch ev.Kind {
		case eventlog.KindCommit:
			c := ev.Commit
			if c.Rev <= since {
				base, data = true, c.Data
				continue
			}
			if !base {
				return nil, true, nil
			}
			if err := addCommit(ctx, src, c, added); err != nil {
				return nil, false, fmt.Errorf("sync: blocks of %s at rev %s: %w", did, c.Rev, err)
			}
			data = c.Data
		case eventlog.KindSync:
			s := ev.Sync
			if s.Rev <= since {
				base, data = true, s.Data
				continue
			}
			if !base || s.Data != data {
				return nil, true, nil
			}
			added[s.Commit] = struct{}{}
		}
	}
	if err := it.Close(); err != nil {
		return nil, false, fmt.Errorf("sync: iterate %s: %w", did, err)
	}
	if !base {
		return nil, true, nil
	}
	return added, false, nil
}

// addCommit adds to set the blocks commit c added to its repo: the commit
// block, the records it wrote that differ from the key's previous value,
// and the MST nodes of its tree that its parent tree lacks. The nodes come
// from replaying c's ops on the parent tree (src holds every block the repo
// ever had); should the replay not reach c's tree, every block of c's CAR
// slice is taken instead (a superset: its proof blocks are unchanged
// nodes).
func addCommit(ctx context.Context, src mst.BlockSource, c *eventlog.Commit, set cidSet) error {
	set[c.Commit] = struct{}{}
	var tree *mst.Tree
	if c.PrevData.Defined() {
		var err error
		if tree, err = mst.Load(ctx, src, c.PrevData); err != nil {
			return err
		}
	} else {
		tree = mst.NewEmpty(src)
	}
	for _, op := range c.Ops {
		var err error
		switch op.Action {
		case eventlog.ActionCreate, eventlog.ActionUpdate:
			_, err = tree.Put(ctx, op.Path, op.CID)
			if op.CID != op.Prev {
				set[op.CID] = struct{}{}
			}
		case eventlog.ActionDelete:
			_, err = tree.Delete(ctx, op.Path)
		}
		if err != nil {
			return fmt.Errorf("replay %s %s: %w", op.Action, op.Path, err)
		}
	}
	res, err := tree.Commit(ctx)
	if err != nil {
		return err
	}
	if res.Root != c.Data {
		_, blocks, err := car.Unmarshal(c.Blocks, nil)
		if err != nil {
			return err
		}
		for _, b := range blocks {
			set[b.CID] = struct{}{}
		}
		return nil
	}
	for _, b := range res.NewBlocks {
		set[b.CID] = struct{}{}
	}
	return nil
}

// exportAdded writes a CAR rooted at head's commit: the commit block, then,
// in the order of a whole export (each node, its records, its subtrees from
// left to right), the blocks of the current tree that are in added. A node
// not in added is skipped with its whole subtree: a node is named by its
// content, so if it was in the tree all along since the diff's base, so was
// everything below it. Each block is sent once.
func exportAdded(ctx context.Context, w io.Writer, src mst.BlockSource, head eventlog.RepoHead, added cidSet) error {
	cw, err := car.NewWriter(w, head.Commit)
	if err != nil {
		return err
	}
	cb, err := src.Get(ctx, head.Commit)
	if err != nil {
		return fmt.Errorf("commit block: %w", err)
	}
	if err := cw.Put(head.Commit, cb); err != nil {
		return err
	}
	delete(added, head.Commit)
	if err := walkAdded(ctx, cw, src, head.Data, added); err != nil {
		return err
	}
	return cw.Close()
}

func walkAdded(ctx context.Context, cw *car.Writer, src mst.BlockSource, n cid.Cid, added cidSet) error {
	if _, ok := added[n]; !ok {
		return nil
	}
	delete(added, n)
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := src.Get(ctx, n)
	if err != nil {
		return fmt.Errorf("node block: %w", err)
	}
	if err := cw.Put(n, data); err != nil {
		return err
	}
	var nd indigomst.NodeData
	if err := nd.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("decode node %s: %w", n, err)
	}
	for _, e := range nd.Entries {
		if _, ok := added[e.Value]; !ok {
			continue
		}
		delete(added, e.Value)
		rec, err := src.Get(ctx, e.Value)
		if err != nil {
			return fmt.Errorf("record block: %w", err)
		}
		if err := cw.Put(e.Value, rec); err != nil {
			return err
		}
	}
	if nd.Left != nil {
		if err := walkAdded(ctx, cw, src, *nd.Left, added); err != nil {
			return err
		}
	}
	for _, e := range nd.Entries {
		if e.Right != nil {
			if err := walkAdded(ctx, cw, src, *e.Right, added); err != nil {
				return err
			}
		}
	}
	return nil
}
