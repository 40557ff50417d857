package mst

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// Op is the net change of one key between two commits.
type Op struct {
	Key  string
	Prev cid.Cid // value before; cid.Undef for a create
	Val  cid.Cid // value after; cid.Undef for a delete
}

// CommitResult is what Commit returns.
type CommitResult struct {
	// Root is the new root CID (the commit's "data").
	Root cid.Cid
	// PrevRoot is the root at Load or the previous Commit (the #commit
	// event's "prevData"); cid.Undef for the first commit of NewEmpty.
	PrevRoot cid.Cid
	// Ops are the net changes since PrevRoot, sorted by key. Keys written
	// and then set back to their old value (or created and deleted) within
	// the commit are left out.
	Ops []Op
	// NewBlocks are the node blocks of Root that were created since
	// PrevRoot, children before parents. Persist them: the block store
	// backing the next Load must have them.
	NewBlocks []Block
	// ProofBlocks are unchanged node blocks (already in the store) that a
	// sync v1.1 consumer needs besides NewBlocks to invert Ops on the new
	// tree and get back PrevRoot. A #commit event's CAR is the commit block,
	// the records, NewBlocks and ProofBlocks.
	ProofBlocks []Block
}

// Commit encodes the nodes changed since the last commit (hashing each
// once, children first), and returns the new root with the new blocks and
// the proof blocks for the changes. The tree stays usable, with all changes
// committed.
//
// The proof covers each changed key k in the new tree: every node on the
// search path of k from the root (down to the node holding k, or to the
// last node whose gap around k has a subtree), and, where k is found, the
// inner edge of the subtrees on either side of it (the right-most path of
// the left one and the left-most path of the right one). Inverting a create
// merges those two subtrees; inverting a delete splits the subtree in k's
// gap along k's path; and, because ops may be inverted in any order, a
// later inversion may need the edge that an earlier one exposed. Nodes on
// these paths that changed are in NewBlocks, the others in ProofBlocks.
//
// Computing the proof may read blocks (the edges of unchanged neighbour
// subtrees), a few per changed key. If that fails, Commit returns the error
// and the tree is as before the call.
func (t *Tree) Commit(ctx context.Context) (*CommitResult, error) {
	ops := t.netOps()

	// Collect the proof first: it only reads, so an error leaves the tree
	// unchanged. Dirty nodes on the paths will be new blocks.
	var proof []*node
	inProof := map[*node]bool{}
	visit := func(n *node) {
		if !n.dirty && !inProof[n] {
			inProof[n] = true
			proof = append(proof, n)
		}
	}
	for _, op := range ops {
		if err := t.cover(ctx, op.Key, visit); err != nil {
			return nil, fmt.Errorf("commit proof for %q: %w", op.Key, err)
		}
	}

	res := &CommitResult{PrevRoot: t.base, Ops: ops}
	res.NewBlocks = encodeDirty(t.root, nil)
	res.Root = t.root.cid

	seen := make(map[cid.Cid]bool, len(res.NewBlocks)+len(proof))
	for _, b := range res.NewBlocks {
		seen[b.CID] = true
	}
	for _, n := range proof {
		if !seen[n.cid] {
			seen[n.cid] = true
			res.ProofBlocks = append(res.ProofBlocks, Block{CID: n.cid, Data: n.raw})
		}
	}
	t.base = res.Root
	t.changes = nil
	return res, nil
}

// netOps returns the net changes since the last commit, sorted by key.
func (t *Tree) netOps() []Op {
	ops := make([]Op, 0, len(t.changes))
	for k, c := range t.changes {
		if c.prev != c.cur {
			ops = append(ops, Op{Key: k, Prev: c.prev, Val: c.cur})
		}
	}
	slices.SortFunc(ops, func(a, b Op) int { return strings.Compare(a.Key, b.Key) })
	return ops
}

// encodeDirty encodes the dirty nodes of the subtree n, children first,
// appending their blocks to out, and marks them clean.
func encodeDirty(n *node, out []Block) []Block {
	if !n.dirty {
		return out
	}
	for _, k := range n.kids {
		if k != nil && k.dirty {
			out = encodeDirty(k, out)
		}
	}
	data := n.encoded().encode()
	n.cid = cidForNode(data)
	n.raw = data
	n.dirty = false
	return append(out, Block{CID: n.cid, Data: data})
}

// cover calls visit for every node a consumer needs to invert a write of
// key (see Commit), loading nodes as needed.
func (t *Tree) cover(ctx context.Context, key string, visit func(*node)) error {
	n := t.root
	for {
		if err := t.load(ctx, n); err != nil {
			return err
		}
		visit(n)
		i, found := n.search(key)
		if found {
			if err := t.edge(ctx, n.kids[i], true, visit); err != nil {
				return err
			}
			return t.edge(ctx, n.kids[i+1], false, visit)
		}
		if n = n.kids[i]; n == nil {
			return nil
		}
	}
}

// edge visits the right-most (last) or left-most path of the subtree n.
func (t *Tree) edge(ctx context.Context, n *node, last bool, visit func(*node)) error {
	for n != nil {
		if err := t.load(ctx, n); err != nil {
			return err
		}
		visit(n)
		if last {
			n = n.kids[len(n.kids)-1]
		} else {
			n = n.kids[0]
		}
	}
	return nil
}

// Invert is the check a sync v1.1 consumer makes on a #commit event: it
// loads the tree root from src (typically only the event's blocks), applies
// the inverse of each op in the order given (deleting created keys, putting
// back the previous values of updated and deleted keys), and returns the
// resulting root, which must equal the event's prevData. Each op must
// match the tree (a created key must have Val, ...), else an error is
// returned; a block the inversion needs but src lacks gives an error
// matching ErrMissingBlock. Unlike Commit, it computes no proof.
func Invert(ctx context.Context, src BlockSource, root cid.Cid, ops []Op) (cid.Cid, error) {
	t, err := Load(ctx, src, root)
	if err != nil {
		return cid.Undef, err
	}
	for _, op := range ops {
		var prev cid.Cid
		if op.Prev.Defined() {
			prev, err = t.Put(ctx, op.Key, op.Prev)
		} else {
			prev, err = t.Delete(ctx, op.Key)
		}
		if err != nil {
			return cid.Undef, fmt.Errorf("invert op on %q: %w", op.Key, err)
		}
		if prev != op.Val {
			return cid.Undef, fmt.Errorf("invert op on %q: tree has %s, op says %s", op.Key, prev, op.Val)
		}
	}
	encodeDirty(t.root, nil)
	return t.root.cid, nil
}
