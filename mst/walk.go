package mst

import (
	"context"
	"errors"

	"github.com/ipfs/go-cid"
)

// Walk calls fn for every key >= from, in increasing order, with its value
// ("" visits all keys). If fn returns ErrStopWalk, Walk stops and returns
// nil; any other error stops the walk and is returned.
//
// Walk reads the nodes it needs (the path to from, then every node after
// it), and does not keep the ones it had to read: walking a whole large tree
// holds only one path of nodes in memory. Uncommitted changes are seen.
func (t *Tree) Walk(ctx context.Context, from string, fn func(key string, val cid.Cid) error) error {
	return stopOK(t.walk(ctx, t.root, from, fn))
}

// WalkReverse calls fn for every key < before, in decreasing order ("" has
// no bound: all keys). It is Walk's mirror, for listings in reverse order
// with an exclusive cursor.
func (t *Tree) WalkReverse(ctx context.Context, before string, fn func(key string, val cid.Cid) error) error {
	return stopOK(t.walkReverse(ctx, t.root, before, fn))
}

func stopOK(err error) error {
	if errors.Is(err, ErrStopWalk) {
		return nil
	}
	return err
}

func (t *Tree) walk(ctx context.Context, n *node, from string, fn func(string, cid.Cid) error) error {
	n, err := t.peek(ctx, n)
	if err != nil {
		return err
	}
	i, _ := n.search(from)
	// The gap before keys[i] may hold keys >= from.
	if k := n.kids[i]; k != nil {
		if err := t.walk(ctx, k, from, fn); err != nil {
			return err
		}
	}
	for ; i < len(n.keys); i++ {
		if err := fn(n.keys[i], n.vals[i]); err != nil {
			return err
		}
		if k := n.kids[i+1]; k != nil {
			if err := t.walk(ctx, k, "", fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Tree) walkReverse(ctx context.Context, n *node, before string, fn func(string, cid.Cid) error) error {
	n, err := t.peek(ctx, n)
	if err != nil {
		return err
	}
	i := len(n.keys)
	if before != "" {
		i, _ = n.search(before)
	}
	// keys[:i] are < before; the gap before keys[i] may hold some too.
	if k := n.kids[i]; k != nil {
		if err := t.walkReverse(ctx, k, before, fn); err != nil {
			return err
		}
	}
	for i--; i >= 0; i-- {
		if err := fn(n.keys[i], n.vals[i]); err != nil {
			return err
		}
		if k := n.kids[i]; k != nil {
			if err := t.walkReverse(ctx, k, "", fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// WalkNodes calls fn for every node block of the committed tree, in depth
// first pre-order (a node, then its subtrees from left to right), with the
// values (record CIDs) held in that node in key order. It is the walk for a
// full repository export (CAR): every block fn sees, plus the records of
// the values, is the whole repository below the commit. Like Walk, it does
// not keep the nodes it reads; ErrStopWalk ends it early. It returns
// ErrUncommitted if the tree has uncommitted changes.
func (t *Tree) WalkNodes(ctx context.Context, fn func(node Block, vals []cid.Cid) error) error {
	if t.root.dirty {
		return ErrUncommitted
	}
	return stopOK(t.walkNodes(ctx, t.root, fn))
}

func (t *Tree) walkNodes(ctx context.Context, n *node, fn func(Block, []cid.Cid) error) error {
	n, err := t.peek(ctx, n)
	if err != nil {
		return err
	}
	if err := fn(Block{CID: n.cid, Data: n.raw}, n.vals); err != nil {
		return err
	}
	for _, k := range n.kids {
		if k != nil {
			if err := t.walkNodes(ctx, k, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Proof returns the node blocks that prove whether key is in the committed
// tree, for com.atproto.sync.getRecord: the root, and each node on the
// search path of key, down to the node holding key (inclusion) or to the
// node whose gap around key has no subtree (absence). A consumer loads a
// Tree from just these blocks and calls Get. It returns ErrUncommitted if
// the tree has uncommitted changes.
func (t *Tree) Proof(ctx context.Context, key string) ([]Block, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if t.root.dirty {
		return nil, ErrUncommitted
	}
	var out []Block
	n := t.root
	for n != nil {
		if err := t.load(ctx, n); err != nil {
			return nil, err
		}
		out = append(out, Block{CID: n.cid, Data: n.raw})
		i, found := n.search(key)
		if found {
			break
		}
		n = n.kids[i]
	}
	return out, nil
}
