package commit

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/lexicon"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// Limits relays enforce on a #commit.
const (
	MaxOps         = 200
	MaxBlocksBytes = 2_000_000
)

// Write is one record operation.
type Write struct {
	Action     string // eventlog.ActionCreate, ActionUpdate or ActionDelete
	Collection syntax.NSID
	RKey       syntax.RecordKey
	Record     map[string]any // the record (atproto data) for creates and updates
	// SwapRecord, when set, must equal the record's current CID;
	// cid.Undef means the record must not exist.
	SwapRecord *cid.Cid
	// Validate says how the record is checked against its lexicon.
	Validate ValidationMode
	// Encoded, if set, is the record's DAG-CBOR as given (an imported
	// repo's record, kept byte for byte with its CID, EncodedCID) instead
	// of Record; it is not validated against its lexicon.
	Encoded    []byte
	EncodedCID cid.Cid
}

// ValidationMode is the XRPC `validate` parameter.
type ValidationMode int

const (
	// ValidateDefault validates records of known types; others are
	// accepted with status "unknown" (validate unset).
	ValidateDefault ValidationMode = iota
	// ValidateRequire refuses records whose type has no lexicon (validate: true).
	ValidateRequire
	// ValidateSkip skips validation (validate: false).
	ValidateSkip
)

// Validator checks records against their lexicons. Validate returns the
// validation status ("valid", "unknown", or "" when skipped) or an error
// wrapping ErrInvalidRecord.
type Validator interface {
	Validate(collection syntax.NSID, rkey syntax.RecordKey, rec map[string]any, mode ValidationMode) (string, error)
}

// Lexicons adapts the shipped lexicon catalog to Builder.Validator.
func Lexicons(v *lexicon.Validator) Validator { return lexicons{v} }

type lexicons struct{ v *lexicon.Validator }

func (l lexicons) Validate(coll syntax.NSID, rkey syntax.RecordKey, rec map[string]any, mode ValidationMode) (string, error) {
	m := lexicon.ModeDefault
	switch mode {
	case ValidateRequire:
		m = lexicon.ModeRequire
	case ValidateSkip:
		m = lexicon.ModeSkip
	}
	st, err := l.v.Validate(coll, rkey, rec, m)
	if err != nil {
		return "", &RecordError{Message: err.Error()}
	}
	return string(st), nil
}

// Path is the write's MST key, collection/rkey.
func (w *Write) Path() string { return w.Collection.String() + "/" + w.RKey.String() }

// WriteResult is what a write produced.
type WriteResult struct {
	URI              syntax.ATURI
	CID              cid.Cid // cid.Undef for deletes
	ValidationStatus string  // "valid", "unknown", or "" (deletes, skipped)
}

// Repo is the repo a commit is built on.
type Repo struct {
	DID    syntax.DID
	Head   *eventlog.RepoHead // nil for the repo's first commit
	Key    atcrypto.PrivateKey
	Blocks mst.BlockSource // holds every block of the head's tree
}

// Result is a built commit.
type Result struct {
	Event  *eventlog.Event // the #commit event to append
	Writes []WriteResult   // one per write, in order
	Rev    syntax.TID
	CID    cid.Cid // the signed commit's CID
}

// Builder builds commits. It is safe for concurrent use on different repos.
type Builder struct {
	clock revClock
	now   func() time.Time
	// Validator, if set, checks records of creates and updates; without one
	// every record's status is "unknown" (validate: true is refused).
	Validator Validator
}

// NewBuilder returns a Builder using the wall clock; now may be nil.
func NewBuilder(now func() time.Time) *Builder {
	if now == nil {
		now = time.Now
	}
	return &Builder{now: now}
}

// Build applies writes to repo and returns the signed commit event. Nothing
// is written anywhere: append Result.Event to the log (it names the head's
// rev as since, so the log refuses it if another commit got in first).
// A commit without writes is valid (a new account's first, empty commit).
func (b *Builder) Build(ctx context.Context, repo Repo, writes []Write) (*Result, error) {
	if len(writes) > MaxOps {
		return nil, fmt.Errorf("%w: %d writes, limit %d", ErrTooManyWrites, len(writes), MaxOps)
	}
	var tree *mst.Tree
	if repo.Head == nil {
		tree = mst.NewEmpty(repo.Blocks)
	} else {
		var err error
		if tree, err = mst.Load(ctx, repo.Blocks, repo.Head.Data); err != nil {
			return nil, fmt.Errorf("load repo tree: %w", err)
		}
	}
	res := &Result{Writes: make([]WriteResult, len(writes))}
	ops := make([]eventlog.Op, len(writes))
	var records []car.Block
	seen := make(map[string]bool, len(writes))
	for i := range writes {
		w := &writes[i]
		path := w.Path()
		if err := mst.ValidateKey(path); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidWrite, err)
		}
		if seen[path] {
			return nil, fmt.Errorf("%w: %s is written twice in one commit", ErrInvalidWrite, path)
		}
		seen[path] = true
		cur, exists, err := tree.Get(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if w.SwapRecord != nil {
			if (!w.SwapRecord.Defined() && exists) || (w.SwapRecord.Defined() && (!exists || !cur.Equals(*w.SwapRecord))) {
				return nil, fmt.Errorf("%w: record %s is at %s", ErrInvalidSwap, path, describe(cur, exists))
			}
		}
		op := eventlog.Op{Action: w.Action, Path: path}
		switch w.Action {
		case eventlog.ActionCreate, eventlog.ActionUpdate:
			if w.Action == eventlog.ActionCreate && exists {
				return nil, fmt.Errorf("%w: %s", ErrRecordExists, path)
			}
			if w.Action == eventlog.ActionUpdate && !exists {
				return nil, fmt.Errorf("%w: %s", ErrRecordNotFound, path)
			}
			var data []byte
			var c cid.Cid
			var status string
			if w.Encoded != nil {
				data, c = w.Encoded, w.EncodedCID
			} else {
				if data, c, err = EncodeRecord(w.Collection, w.Record); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
				if status, err = b.validate(w); err != nil {
					return nil, err
				}
			}
			res.Writes[i].ValidationStatus = status
			if _, err := tree.Put(ctx, path, c); err != nil {
				return nil, fmt.Errorf("write %s: %w", path, err)
			}
			records = append(records, car.Block{CID: c, Data: data})
			op.CID = c
			if exists {
				op.Prev = cur
			}
		case eventlog.ActionDelete:
			if !exists {
				return nil, fmt.Errorf("%w: %s", ErrRecordNotFound, path)
			}
			if _, err := tree.Delete(ctx, path); err != nil {
				return nil, fmt.Errorf("delete %s: %w", path, err)
			}
			op.Prev = cur
		default:
			return nil, fmt.Errorf("%w: action %q", ErrInvalidWrite, w.Action)
		}
		ops[i] = op
		res.Writes[i].URI, res.Writes[i].CID = syntax.ATURI("at://"+repo.DID.String()+"/"+path), op.CID
	}
	diff, err := tree.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("commit tree: %w", err)
	}

	var since syntax.TID
	var prevData cid.Cid
	if repo.Head != nil {
		since, prevData = repo.Head.Rev, repo.Head.Data
	}
	rev, err := b.clock.next(since, b.now())
	if err != nil {
		return nil, err
	}
	signed := indigorepo.Commit{DID: repo.DID.String(), Version: 3, Data: diff.Root, Rev: rev.String()}
	if err := signed.Sign(repo.Key); err != nil {
		return nil, fmt.Errorf("sign commit: %w", err)
	}
	var cb bytes.Buffer
	if err := signed.MarshalCBOR(&cb); err != nil {
		return nil, fmt.Errorf("encode commit: %w", err)
	}
	commitCID, err := cborCID(cb.Bytes())
	if err != nil {
		return nil, err
	}

	blocks := make([]car.Block, 0, 1+len(records)+len(diff.NewBlocks)+len(diff.ProofBlocks))
	blocks = append(blocks, car.Block{CID: commitCID, Data: cb.Bytes()})
	blocks = append(blocks, records...)
	for _, nb := range diff.NewBlocks {
		blocks = append(blocks, car.Block{CID: nb.CID, Data: nb.Data})
	}
	for _, pb := range diff.ProofBlocks {
		blocks = append(blocks, car.Block{CID: pb.CID, Data: pb.Data})
	}
	slice, err := car.Marshal([]cid.Cid{commitCID}, blocks...)
	if err != nil {
		return nil, fmt.Errorf("encode blocks: %w", err)
	}
	if len(slice) > MaxBlocksBytes {
		return nil, fmt.Errorf("%w: %d bytes of blocks, limit %d", ErrCommitTooLarge, len(slice), MaxBlocksBytes)
	}
	res.Rev, res.CID = rev, commitCID
	res.Event = &eventlog.Event{Kind: eventlog.KindCommit, DID: repo.DID, Commit: &eventlog.Commit{
		Rev: rev, Since: since, Commit: commitCID, Data: diff.Root, PrevData: prevData, Blocks: slice, Ops: ops,
	}}
	return res, nil
}

func describe(c cid.Cid, exists bool) string {
	if !exists {
		return "nothing"
	}
	return c.String()
}

// validate checks a create's or update's record against its lexicon.
func (b *Builder) validate(w *Write) (string, error) {
	if w.Validate == ValidateSkip {
		return "", nil
	}
	if b.Validator == nil {
		if w.Validate == ValidateRequire {
			return "", fmt.Errorf("%w: no lexicon is known for %s", ErrInvalidRecord, w.Collection)
		}
		return "unknown", nil
	}
	rec := w.Record
	if _, ok := rec["$type"]; !ok {
		rec = make(map[string]any, len(w.Record)+1)
		for k, v := range w.Record {
			rec[k] = v
		}
		rec["$type"] = w.Collection.String()
	}
	return b.Validator.Validate(w.Collection, w.RKey, rec, w.Validate)
}
