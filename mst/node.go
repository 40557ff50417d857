package mst

import (
	"context"
	"fmt"
	"sort"

	"github.com/ipfs/go-cid"
)

// BlockSource is where a Tree reads the node blocks it has not loaded yet.
//
// Get returns the bytes of block c. A block the source does not have must be
// reported as an error that matches ErrMissingBlock (errors.Is). The Tree
// never modifies the returned slice and may keep it (as the raw bytes of the
// decoded node, for proofs), so the source must not modify it afterwards.
type BlockSource interface {
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
}

// Block is a CID and the bytes it names. Blocks returned by the package
// share memory with the tree; do not modify Data.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// MemBlocks is a BlockSource backed by a map. It suits tests and a sync
// consumer that checks a commit proof from the blocks of a #commit event.
type MemBlocks map[cid.Cid][]byte

// Get implements BlockSource.
func (m MemBlocks) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	b, ok := m[c]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrMissingBlock, c)
	}
	return b, nil
}

// Put adds blocks to m.
func (m MemBlocks) Put(blocks ...Block) {
	for _, b := range blocks {
		m[b.CID] = b.Data
	}
}

// node is a tree node in memory. A node is either a stub (loaded false:
// only cid and layer are known, the block has not been read) or loaded.
//
// A loaded node holds its keys in increasing order and len(keys)+1 child
// slots: kids[i] is the subtree of keys between keys[i-1] and keys[i]
// (kids[0] is the wire format's "l", kids[i+1] is entry i's "t"); nil means
// no subtree. Children are always exactly one layer down.
//
// A dirty node was created or changed since the last Commit; its cid and raw
// are stale until Commit encodes it. A clean loaded node keeps the exact
// bytes it was decoded from (or encoded to) in raw, for proofs.
type node struct {
	layer  int
	loaded bool
	dirty  bool
	cid    cid.Cid
	raw    []byte
	keys   []string
	vals   []cid.Cid
	kids   []*node
}

// stub returns an unloaded node for block c at layer.
func stub(c cid.Cid, layer int) *node {
	return &node{cid: c, layer: layer}
}

// search returns the index of the first key >= key, and whether it equals
// key. If not found, kids[i] is the subtree whose range holds key.
func (n *node) search(key string) (i int, found bool) {
	i = sort.SearchStrings(n.keys, key)
	return i, i < len(n.keys) && n.keys[i] == key
}

// isEmpty reports whether a loaded node has neither keys nor subtree.
func (n *node) isEmpty() bool {
	return len(n.keys) == 0 && n.kids[0] == nil
}

// markDirty records that n changed and its block must be re-encoded.
func (n *node) markDirty() {
	n.dirty = true
	n.cid = cid.Undef
	n.raw = nil
}

// newNode returns a new dirty loaded node.
func newNode(layer int, keys []string, vals []cid.Cid, kids []*node) *node {
	return &node{layer: layer, loaded: true, dirty: true, keys: keys, vals: vals, kids: kids}
}

// lift wraps n in pointer-only nodes (no keys, one subtree) until it is at
// layer. Such nodes fill the layers between a key and a subtree more than
// one layer below it. A nil n stays nil.
func lift(n *node, layer int) *node {
	for n != nil && n.layer < layer {
		n = newNode(n.layer+1, nil, nil, []*node{n})
	}
	return n
}

// encoded returns n (loaded, with every child's CID known) in wire form.
func (n *node) encoded() *encodedNode {
	e := &encodedNode{keys: n.keys, vals: n.vals, links: make([]cid.Cid, len(n.kids))}
	for i, k := range n.kids {
		if k != nil {
			e.links[i] = k.cid
		}
	}
	return e
}

// fetch reads and decodes block c as a node at layer (-1 for the root, whose
// layer is the height of its keys). It checks the block's hash and that the
// node fits the tree at that layer.
func fetch(ctx context.Context, src BlockSource, c cid.Cid, layer int) (*node, error) {
	data, err := src.Get(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("read node %s: %w", c, err)
	}
	if err := checkCID(c, data); err != nil {
		return nil, err
	}
	e, err := decodeNode(data)
	if err != nil {
		return nil, fmt.Errorf("decode node %s: %w", c, err)
	}
	if layer < 0 {
		switch {
		case len(e.keys) > 0:
			layer = KeyHeight(e.keys[0])
		case e.links[0].Defined():
			return nil, fmt.Errorf("%w: root node %s has a subtree but no key", ErrInvalidTree, c)
		default:
			layer = 0 // the empty tree
		}
	} else if len(e.keys) == 0 && !e.links[0].Defined() {
		return nil, fmt.Errorf("%w: empty node %s inside the tree", ErrInvalidTree, c)
	}
	n := &node{
		layer:  layer,
		loaded: true,
		cid:    c,
		raw:    data,
		keys:   e.keys,
		vals:   e.vals,
		kids:   make([]*node, len(e.links)),
	}
	for _, k := range e.keys {
		if h := KeyHeight(k); h != layer {
			return nil, fmt.Errorf("%w: key %q of height %d in node %s at layer %d", ErrInvalidTree, k, h, c, layer)
		}
	}
	for i, l := range e.links {
		if !l.Defined() {
			continue
		}
		if layer == 0 {
			return nil, fmt.Errorf("%w: node %s at layer 0 has a subtree", ErrInvalidTree, c)
		}
		n.kids[i] = stub(l, layer-1)
	}
	return n, nil
}

// load makes a stub n loaded, in place. Loaded nodes are left as they are.
func (t *Tree) load(ctx context.Context, n *node) error {
	if n.loaded {
		return nil
	}
	f, err := fetch(ctx, t.src, n.cid, n.layer)
	if err != nil {
		return err
	}
	*n = *f
	return nil
}

// peek returns n loaded without caching it in the tree: a stub is decoded
// into a new node that the caller drops after use. Walks use it so that
// visiting a whole tree does not keep the whole tree in memory.
func (t *Tree) peek(ctx context.Context, n *node) (*node, error) {
	if n.loaded {
		return n, nil
	}
	return fetch(ctx, t.src, n.cid, n.layer)
}
