package mst

import "errors"

// Errors. Every error the package returns for one of these conditions
// matches the sentinel with errors.Is; errors from the BlockSource are
// passed on wrapped.
var (
	// ErrMissingBlock is what a BlockSource returns (wrapped) for a block it
	// does not have. The Tree passes it on, so callers can tell a partial
	// store (for example a commit proof that lacks a block) from other
	// failures.
	ErrMissingBlock = errors.New("mst: missing block")
	// ErrInvalidKey is returned for a key that ValidateKey rejects.
	ErrInvalidKey = errors.New("mst: invalid key")
	// ErrInvalidValue is returned by Put for an undefined value CID.
	ErrInvalidValue = errors.New("mst: invalid value CID")
	// ErrInvalidNode is returned for a block that is not a node in the
	// canonical DAG-CBOR encoding, or that does not hash to its CID.
	ErrInvalidNode = errors.New("mst: invalid node")
	// ErrInvalidTree is returned when nodes decode but do not form a valid
	// tree: a key on the wrong layer, keys out of order, a child under
	// layer 0, an empty inner node, or a root that has no key.
	ErrInvalidTree = errors.New("mst: invalid tree")
	// ErrUncommitted is returned by operations that read block bytes
	// (Proof, WalkNodes) while the tree has changes not yet committed.
	ErrUncommitted = errors.New("mst: tree has uncommitted changes")
	// ErrStopWalk may be returned by a walk callback to end the walk early;
	// the walk then returns nil.
	ErrStopWalk = errors.New("mst: stop walk")
)
