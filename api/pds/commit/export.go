package commit

import (
	"context"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// ExportCAR writes the whole repo whose signed commit is commitCID (with MST
// root data) to w as a CAR v1: the commit block, then every MST node in
// depth-first pre-order, each followed by the records it holds. It streams
// as it walks: memory stays bounded by one tree path and the CAR writer's
// buffer, whatever the repo's size. Every block comes from src.
func ExportCAR(ctx context.Context, w io.Writer, src mst.BlockSource, commitCID, data cid.Cid) error {
	cw, err := car.NewWriter(w, commitCID)
	if err != nil {
		return err
	}
	cb, err := src.Get(ctx, commitCID)
	if err != nil {
		return fmt.Errorf("commit block: %w", err)
	}
	if err := cw.Put(commitCID, cb); err != nil {
		return err
	}
	tree, err := mst.Load(ctx, src, data)
	if err != nil {
		return err
	}
	err = tree.WalkNodes(ctx, func(node mst.Block, vals []cid.Cid) error {
		if err := cw.Put(node.CID, node.Data); err != nil {
			return err
		}
		for _, v := range vals {
			rec, err := src.Get(ctx, v)
			if err != nil {
				return fmt.Errorf("record block: %w", err)
			}
			if err := cw.Put(v, rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return cw.Close()
}
