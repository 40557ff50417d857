// Package mst is the Merkle Search Tree (MST) of atproto repositories
// (repository spec v3), on block storage and loaded lazily.
//
// A repository maps keys ("<collection>/<record key>") to record CIDs. The
// MST stores that map as a tree of content-addressed nodes whose shape
// depends only on the set of keys, so equal maps have equal root CIDs
// whatever the order of writes. This package reads nodes from a
// BlockSource only when an operation needs them, writes nothing itself, and
// hands the new node blocks to the caller at Commit, together with the proof
// blocks that the sync v1.1 firehose needs.
//
// # Usage
//
//	t, err := mst.Load(ctx, blocks, root)   // reads the root node only
//	prev, err := t.Put(ctx, "app.bsky.feed.post/3l...", recordCID)
//	prev, err = t.Delete(ctx, "app.bsky.feed.like/3k...")
//	res, err := t.Commit(ctx)               // hashes changed nodes, once
//	// persist res.NewBlocks; the #commit event carries res.NewBlocks,
//	// res.ProofBlocks, the records, res.Ops, and prevData = res.PrevRoot.
//
// Reads: Get; Walk and WalkReverse (ordered, from a key, for listRecords);
// WalkNodes (every node block, for a repository export); Proof (the path to
// a key, for com.atproto.sync.getRecord). Consumers of a #commit check it
// with Invert.
//
// # Terminology
//
// Key height (layer): the number of leading zero 2-bit groups of
// SHA-256(key), so about 1 key in 4 is on layer 1 or above, 1 in 16 on
// layer 2 or above, and so on (fanout 4). Layer 0 is the bottom.
//
// Node: holds, in increasing order, every key of one layer that falls in
// its range, and between those keys the subtrees of the keys of lower
// layers. A node with keys k1 < k2 < ... < kn has n+1 gaps: before k1,
// between each pair, after kn. Each gap has a subtree (a node one layer
// down) or nothing. On the wire, the subtree of the first gap is "l", and
// the subtree after entry i is that entry's "t".
//
// Root: the node of the highest layer of any key. The empty tree is a single
// node with no entries and no "l".
//
// Entry encoding: each entry stores its key as "p", the length of the prefix
// it shares with the previous key of the node, and "k", the rest. Node bytes
// are canonical DAG-CBOR, and the node CID is CIDv1, dag-cbor, sha2-256.
//
// Stub: in memory, a node whose CID is known but whose block has not been
// read. A loaded tree is the root plus whichever nodes operations needed;
// everything else stays a stub.
//
// Dirty: a node created or changed since the last Commit. Commit encodes and
// hashes dirty nodes only, children before parents, so the root is computed
// once per commit however many records the commit writes.
//
// # Tricky bits
//
// Layer gaps. A subtree is always exactly one layer below its parent. When a
// key of layer 0 is the only key between two keys of layer 3, the gap holds a
// chain of "pointer-only" nodes (no entries, only "l") on layers 2 and 1
// down to the layer-0 node. Inserting a key into an empty gap creates such a
// chain; a key above the current root creates new root layers, and the old
// tree hangs under them through such chains.
//
// Insert splits. A new key on layer L lands in a gap of a layer-L node; the
// subtree of that gap holds keys on both sides of the new key, so it is
// split in two around the key: at each layer the node is cut at the key's
// position, and the subtree of the gap the cut falls in is split the same
// way, one layer further down. Only the nodes on the key's path are read
// and rebuilt. A side left without keys is dropped, or kept as a
// pointer-only node if it still holds a subtree. If all of a subtree falls
// on one side, it is reused unchanged (not dirty).
//
// Remove merges. Removing a key joins the two gaps beside it, so their
// subtrees are merged: the entries are concatenated, and where the last
// subtree of the left node meets the first subtree of the right one, those
// two merge in turn, one layer down. Only these facing edges are read. A
// node left with no keys and no subtree disappears from its parent; a root
// left with no keys but a subtree is replaced by that subtree (the tree
// loses a layer, perhaps several).
//
// Proof blocks. A sync v1.1 consumer gets only the blocks in the #commit
// event. It checks the commit by inverting the ops on the new tree (delete
// the created keys, put back the old values of updated and deleted ones),
// in any order, and comparing the result with prevData. New blocks alone do
// not suffice: re-inserting a deleted key splits the subtree of its gap
// along the key's path, whose nodes may be unchanged; removing a created
// key merges the subtrees beside it, which needs their facing edges; and an
// inversion may expose an edge that a later one in the sequence needs. So
// for each changed key, Commit includes every node on the key's search path
// in the new tree (to the node holding it, or down to the last gap that has
// a subtree), plus the right-most path of the subtree left of the key and
// the left-most path of the subtree right of it. The unchanged ones are
// CommitResult.ProofBlocks. This is the "covering proof" of the reference
// implementation (it passes the interop commit proof fixtures), and in our
// randomized tests a superset of the blocks indigo's WriteDiffBlocks writes
// for the same ops, except for keys whose writes cancel out within the
// commit: those are not ops, and get no proof.
//
// Absence proofs. Proof follows the key's gaps down until one has no
// subtree, even below the key's own layer: the reference implementation's
// getRecord proof does the same, and a verifier that stops at the key's
// layer finds every node it needs in it.
//
// Walks and memory. Operations that change the tree keep the nodes they
// read, so that Commit can encode them. Walks decode the nodes they visit
// into temporary copies instead, so walking a whole large tree (an export)
// keeps one path in memory, not the tree.
//
// Validation. Keys are checked by ValidateKey on every write. Blocks are
// checked when read: the bytes must hash to the CID, decode as canonical
// DAG-CBOR with keys in order, and every key must be of the layer the node
// is at. A node is not checked against the key range of its parent's gap.
//
// # Relation to indigo
//
// github.com/bluesky-social/indigo/atproto/repo/mst implements the same
// structure but loads a tree entirely (LoadTreeFromStore reads every node)
// and cannot fetch a missing subtree during a write; this package is
// written for lazy loading and is tested against indigo's as an oracle: the
// same roots and node bytes for random operation sequences, and indigo's
// partial tree inverting our commit proofs.
package mst
