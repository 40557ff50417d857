package mst

import (
	"context"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
)

// Tree is a Merkle Search Tree over a BlockSource, loaded lazily: Load
// reads only the root node, and each operation reads only the nodes on the
// path it needs, keeping them (decoded) until the Tree is dropped. Changes
// stay in memory until Commit encodes the changed nodes, once, and returns
// them.
//
// A Tree is not safe for concurrent use. For a long-lived repository the
// intended pattern is one Tree per commit: Load at the current root, apply
// the writes, Commit, persist the blocks, drop the Tree. Memory per write is
// then proportional to the depth of the tree, not its size.
type Tree struct {
	src     BlockSource
	root    *node
	base    cid.Cid            // root at Load or the last Commit; Undef for NewEmpty
	changes map[string]*change // keys written since base
}

// change is a key's value at base and now; Undef means absent.
type change struct {
	prev, cur cid.Cid
}

// NewEmpty returns an empty tree reading from src. Its first Commit
// returns the empty root node as a new block, with an undefined PrevRoot.
func NewEmpty(src BlockSource) *Tree {
	return &Tree{src: src, root: emptyRoot()}
}

func emptyRoot() *node {
	return newNode(0, nil, nil, []*node{nil})
}

// Load returns the tree whose root node is root, reading only that node
// from src.
func Load(ctx context.Context, src BlockSource, root cid.Cid) (*Tree, error) {
	n, err := fetch(ctx, src, root, -1)
	if err != nil {
		return nil, fmt.Errorf("load tree: %w", err)
	}
	return &Tree{src: src, root: n, base: root}, nil
}

// Root returns the root CID as of Load or the last Commit (cid.Undef for a
// tree from NewEmpty that was never committed). Uncommitted changes are not
// reflected.
func (t *Tree) Root() cid.Cid {
	return t.base
}

// Get returns the value of key, and whether the key is in the tree.
func (t *Tree) Get(ctx context.Context, key string) (cid.Cid, bool, error) {
	if err := ValidateKey(key); err != nil {
		return cid.Undef, false, err
	}
	h := KeyHeight(key)
	n := t.root
	for {
		if err := t.load(ctx, n); err != nil {
			return cid.Undef, false, err
		}
		if h > n.layer {
			return cid.Undef, false, nil
		}
		i, found := n.search(key)
		if n.layer == h {
			if !found {
				return cid.Undef, false, nil
			}
			return n.vals[i], true, nil
		}
		if n = n.kids[i]; n == nil {
			return cid.Undef, false, nil
		}
	}
}

// Put sets key to val, and returns the previous value (cid.Undef if the key
// was not in the tree: the write is a create). Setting a key to the value it
// has is a no-op. Put reads every block it needs before it changes
// anything, so on error the tree is unchanged.
func (t *Tree) Put(ctx context.Context, key string, val cid.Cid) (prev cid.Cid, err error) {
	if err := ValidateKey(key); err != nil {
		return cid.Undef, err
	}
	if !val.Defined() {
		return cid.Undef, ErrInvalidValue
	}
	if err := t.load(ctx, t.root); err != nil {
		return cid.Undef, err
	}
	h := KeyHeight(key)
	r := t.root
	switch {
	case r.isEmpty():
		t.root = leafChain(key, val, h, h)
	case h > r.layer:
		// The key goes above the current root: the old tree splits around
		// the key, and each side hangs under the new root (lifted through
		// pointer-only nodes if the key is more than one layer higher).
		left, right, err := t.split(ctx, r, key)
		if err != nil {
			return cid.Undef, err
		}
		t.root = newNode(h, []string{key}, []cid.Cid{val}, []*node{lift(left, h-1), lift(right, h-1)})
	default:
		if prev, _, err = t.insert(ctx, r, key, val, h); err != nil {
			return cid.Undef, err
		}
	}
	t.record(key, prev, val)
	return prev, nil
}

// Delete removes key, and returns its previous value (cid.Undef if the key
// was not in the tree, which is not an error). On error the tree may be
// left partly modified (shrinking the root after the removal may read a
// block) and must be dropped.
func (t *Tree) Delete(ctx context.Context, key string) (prev cid.Cid, err error) {
	if err := ValidateKey(key); err != nil {
		return cid.Undef, err
	}
	if err := t.load(ctx, t.root); err != nil {
		return cid.Undef, err
	}
	h := KeyHeight(key)
	if h > t.root.layer {
		return cid.Undef, nil
	}
	if prev, err = t.remove(ctx, t.root, key, h); err != nil || !prev.Defined() {
		return cid.Undef, err
	}
	t.record(key, prev, cid.Undef)
	// The root must hold a key: drop pointer-only nodes from the top.
	for len(t.root.keys) == 0 && t.root.kids[0] != nil {
		child := t.root.kids[0]
		if err := t.load(ctx, child); err != nil {
			return cid.Undef, err
		}
		t.root = child
	}
	if t.root.isEmpty() {
		t.root = emptyRoot()
	}
	return prev, nil
}

// record notes a write for the op list and proofs of the next Commit.
func (t *Tree) record(key string, prev, cur cid.Cid) {
	if t.changes == nil {
		t.changes = make(map[string]*change)
	}
	if c, ok := t.changes[key]; ok {
		c.cur = cur
		return
	}
	t.changes[key] = &change{prev: prev, cur: cur}
}

// leafChain returns a new node at layer h holding only key, lifted to top.
func leafChain(key string, val cid.Cid, h, top int) *node {
	return lift(newNode(h, []string{key}, []cid.Cid{val}, []*node{nil, nil}), top)
}

// insert puts key (of height h <= n.layer) in the subtree n. It reports
// the previous value and whether anything changed.
func (t *Tree) insert(ctx context.Context, n *node, key string, val cid.Cid, h int) (prev cid.Cid, changed bool, err error) {
	if err := t.load(ctx, n); err != nil {
		return cid.Undef, false, err
	}
	i, found := n.search(key)
	if n.layer > h {
		child := n.kids[i]
		if child == nil {
			// No subtree in this gap yet: a new node at the key's layer,
			// lifted to hang here.
			n.kids[i] = leafChain(key, val, h, n.layer-1)
			n.markDirty()
			return cid.Undef, true, nil
		}
		prev, changed, err = t.insert(ctx, child, key, val, h)
		if changed {
			n.markDirty()
		}
		return prev, changed, err
	}
	if found {
		prev = n.vals[i]
		if prev == val {
			return prev, false, nil
		}
		n.vals[i] = val
		n.markDirty()
		return prev, true, nil
	}
	// A new key on this layer splits the subtree of the gap it falls in.
	left, right, err := t.split(ctx, n.kids[i], key)
	if err != nil {
		return cid.Undef, false, err
	}
	n.keys = slices.Insert(n.keys, i, key)
	n.vals = slices.Insert(n.vals, i, val)
	n.kids[i] = left
	n.kids = slices.Insert(n.kids, i+1, right)
	n.markDirty()
	return cid.Undef, true, nil
}

// split divides the subtree n around key, which is not in it and belongs on
// a higher layer, into the subtrees of the keys below and above key (nil if
// none). Only the nodes on key's path are read and rebuilt; a side that is
// all of n is n itself, unchanged.
func (t *Tree) split(ctx context.Context, n *node, key string) (left, right *node, err error) {
	if n == nil {
		return nil, nil, nil
	}
	if err := t.load(ctx, n); err != nil {
		return nil, nil, err
	}
	i, found := n.search(key)
	if found {
		return nil, nil, fmt.Errorf("%w: key %q found at layer %d", ErrInvalidTree, key, n.layer)
	}
	cl, cr, err := t.split(ctx, n.kids[i], key)
	if err != nil {
		return nil, nil, err
	}
	if i == 0 && cl == nil {
		return nil, n, nil
	}
	if i == len(n.keys) && cr == nil {
		return n, nil, nil
	}
	right = newNode(n.layer,
		slices.Clone(n.keys[i:]),
		slices.Clone(n.vals[i:]),
		append([]*node{cr}, n.kids[i+1:]...))
	// n becomes the left side. Clip so that later appends copy.
	n.keys = slices.Clip(n.keys[:i])
	n.vals = slices.Clip(n.vals[:i])
	n.kids = append(slices.Clip(n.kids[:i]), cl)
	n.markDirty()
	return n, right, nil
}

// remove deletes key (of height h <= n.layer) from the subtree n and
// returns its value, or cid.Undef if it was not there. A subtree left
// without keys is dropped from its parent by the caller (see isEmpty).
func (t *Tree) remove(ctx context.Context, n *node, key string, h int) (cid.Cid, error) {
	if err := t.load(ctx, n); err != nil {
		return cid.Undef, err
	}
	i, found := n.search(key)
	if n.layer > h {
		child := n.kids[i]
		if child == nil {
			return cid.Undef, nil
		}
		prev, err := t.remove(ctx, child, key, h)
		if err != nil || !prev.Defined() {
			return cid.Undef, err
		}
		if child.isEmpty() {
			n.kids[i] = nil
		}
		n.markDirty()
		return prev, nil
	}
	if !found {
		return cid.Undef, nil
	}
	prev := n.vals[i]
	// The subtrees on both sides of the key become one gap: merge them.
	merged, err := t.merge(ctx, n.kids[i], n.kids[i+1])
	if err != nil {
		return cid.Undef, err
	}
	n.keys = slices.Delete(n.keys, i, i+1)
	n.vals = slices.Delete(n.vals, i, i+1)
	n.kids[i] = merged
	n.kids = slices.Delete(n.kids, i+1, i+2)
	n.markDirty()
	return prev, nil
}

// merge joins two adjacent subtrees of the same layer, every key of a below
// every key of b. Only the facing edges are read: where the last subtree of
// a meets the first subtree of b, those merge recursively.
func (t *Tree) merge(ctx context.Context, a, b *node) (*node, error) {
	if a == nil {
		return b, nil
	}
	if b == nil {
		return a, nil
	}
	if err := t.load(ctx, a); err != nil {
		return nil, err
	}
	if err := t.load(ctx, b); err != nil {
		return nil, err
	}
	last := len(a.kids) - 1
	mid, err := t.merge(ctx, a.kids[last], b.kids[0])
	if err != nil {
		return nil, err
	}
	a.keys = append(a.keys, b.keys...)
	a.vals = append(a.vals, b.vals...)
	a.kids = append(append(a.kids[:last], mid), b.kids[1:]...)
	a.markDirty()
	return a, nil
}
