package repo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
	"github.com/pdslog/pdslog/projections/blocks"
)

// Errors of the write path, mapped to XRPC errors by the handlers.
var (
	ErrRepoNotFound    = errors.New("repo: repo not found")
	ErrRepoInactive    = errors.New("repo: repo is not active")
	ErrSwapCommit      = errors.New("repo: swapCommit does not match the repo head")
	ErrConcurrentWrite = errors.New("repo: a concurrent write changed the repo")
)

// Writer is the write path of every repo: it serialises writes per repo,
// builds each commit on the repo's durable head, appends it to the log and
// waits for the projections (read-your-writes). Writes to different repos
// run in parallel.
type Writer struct {
	Log      *eventlog.Log
	Runner   *projections.Runner
	Blocks   *blocks.Projection
	Accounts *accounts.Projection
	Builder  *commit.Builder
	Keys     *commit.SigningKeys
	// Blobs, if set, is the blob index that records' blob references are
	// checked against.
	Blobs *blobs.Projection

	// Limiter, if set, charges each commit's points (create 3, update 2,
	// delete 1) against the account's hourly and daily budgets.
	Limiter *ratelimit.WriteLimiter

	locks sync.Map // syntax.DID -> *sync.Mutex
}

func (w *Writer) lock(did syntax.DID) func() {
	m, _ := w.locks.LoadOrStore(did, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// RateLimitError is a write refused by the account's write budget.
type RateLimitError struct{ Decision ratelimit.Decision }

func (e *RateLimitError) Error() string { return "repo: write rate limit exceeded" }

// WriteResult is a durable, projected commit.
type WriteResult struct {
	*commit.Result
	Seq eventlog.Seq
}

// Apply commits writes to did's repo. swapCommit, when set, must be the
// repo's current commit. It returns once the commit is durable and visible
// to reads.
func (w *Writer) Apply(ctx context.Context, did syntax.DID, writes []commit.Write, swapCommit *cid.Cid) (*WriteResult, error) {
	if w.Limiter != nil {
		var c, u, d int
		for _, wr := range writes {
			switch wr.Action {
			case eventlog.ActionCreate:
				c++
			case eventlog.ActionUpdate:
				u++
			default:
				d++
			}
		}
		if dec := w.Limiter.Charge(did, ratelimit.WritePoints(c, u, d), time.Now()); !dec.OK {
			return nil, &RateLimitError{Decision: dec}
		}
	}
	unlock := w.lock(did)
	defer unlock()
	acct, err := w.Accounts.Get(ctx, did)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrRepoNotFound, did)
	}
	if err != nil {
		return nil, err
	}
	if !acct.Active {
		return nil, fmt.Errorf("%w: %s is %s", ErrRepoInactive, did, acct.Status)
	}
	head, err := w.Log.RepoHead(ctx, did)
	if errors.Is(err, eventlog.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s has no commit", ErrRepoNotFound, did)
	}
	if err != nil {
		return nil, err
	}
	if swapCommit != nil && !swapCommit.Equals(head.Commit) {
		return nil, fmt.Errorf("%w: head is %s", ErrSwapCommit, head.Commit)
	}
	// The blocks projection must hold the head's tree before we build on it.
	if err := w.Runner.CatchUp(ctx, head.Seq); err != nil {
		return nil, err
	}
	if err := w.checkBlobRefs(ctx, did, writes); err != nil {
		return nil, err
	}
	key, err := w.Keys.Get(ctx, did, acct.SigningKeySeq)
	if err != nil {
		return nil, err
	}
	res, err := w.Builder.Build(ctx, commit.Repo{DID: did, Head: &head, Key: key, Blocks: w.Blocks.Source(did)}, writes)
	if err != nil {
		return nil, err
	}
	seq, err := w.Log.Append(ctx, res.Event)
	if errors.Is(err, eventlog.ErrRevConflict) {
		return nil, fmt.Errorf("%w: %v", ErrConcurrentWrite, err)
	}
	if err != nil {
		return nil, err
	}
	if err := w.Runner.CatchUp(ctx, seq); err != nil {
		return nil, fmt.Errorf("commit %s is durable at seq %d but projecting it failed: %w", res.CID, seq, err)
	}
	return &WriteResult{Result: res, Seq: seq}, nil
}
