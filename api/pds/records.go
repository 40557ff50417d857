package pds

import (
	"context"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
)

// WriteResult is a durable, projected commit.
type WriteResult struct {
	*commit.Result
	Seq eventlog.Seq
}

// ApplyWrites commits writes to did's repo: under the account's lock it
// builds the commit on the repo's durable head, appends it and waits for
// the projections (read-your-writes). swapCommit, when set, must be the
// repo's current commit. Writes to different repos run in parallel. A
// taken-down or deactivated account cannot write (CheckChange).
func (p *PDS) ApplyWrites(ctx context.Context, did syntax.DID, writes []commit.Write, swapCommit *cid.Cid) (*WriteResult, error) {
	unlock := p.Lock(did)
	defer unlock()
	acct, err := p.Accounts.Get(ctx, did)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, errorf(ErrRepoNotFound, "Could not find repo: %s", did)
	}
	if err != nil {
		return nil, err
	}
	if err := CheckChange(acct, true); err != nil {
		return nil, err
	}
	head, err := p.Log.RepoHead(ctx, did)
	if errors.Is(err, eventlog.ErrNotFound) {
		return nil, errorf(ErrRepoNotFound, "Could not find repo: %s has no commit", did)
	}
	if err != nil {
		return nil, err
	}
	if swapCommit != nil && !swapCommit.Equals(head.Commit) {
		return nil, errorf(ErrSwapCommit, "swapCommit does not match the repo head: head is %s", head.Commit)
	}
	// The blocks projection must hold the head's tree before we build on it.
	if err := p.Runner.CatchUp(ctx, head.Seq); err != nil {
		return nil, err
	}
	if err := p.checkBlobRefs(ctx, did, writes); err != nil {
		return nil, err
	}
	key, err := p.Keys.Get(ctx, did, acct.SigningKeySeq)
	if err != nil {
		return nil, err
	}
	res, err := p.Builder.Build(ctx, commit.Repo{DID: did, Head: &head, Key: key, Blocks: p.Blocks.Source(did)}, writes)
	if err != nil {
		return nil, err
	}
	seq, err := p.commit(ctx, res.Event)
	if errors.Is(err, eventlog.ErrRevConflict) {
		return nil, errorf(ErrConcurrentWrite, "a concurrent write changed the repo: %v", err)
	}
	if err != nil {
		return nil, err
	}
	return &WriteResult{Result: res, Seq: seq}, nil
}

// checkBlobRefs refuses writes whose records reference a blob the account
// has not uploaded (or the collector deleted), or reference it with a mime
// type or size other than the stored blob's, as the reference PDS does. It
// runs under the account's lock, which the collector also takes before
// deleting a blob, so a blob checked here cannot vanish before the commit
// lands.
func (p *PDS) checkBlobRefs(ctx context.Context, did syntax.DID, writes []commit.Write) error {
	var refs []blobs.Ref
	for _, wr := range writes {
		if wr.Record != nil {
			refs = append(refs, blobs.RefsOf(wr.Record)...)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	// Uploads append under this lock and wait for the index; catching up
	// to the head covers any upload that finished before we took it.
	if err := p.Runner.CatchUp(ctx, p.Log.Head()); err != nil {
		return err
	}
	for _, r := range refs {
		c, err := cid.Decode(r.CID)
		if err != nil || c.Version() != 1 || c.Type() != cid.Raw {
			return errorf(ErrInvalidInput, "Invalid blob ref %s: blobs are CIDv1 with the raw codec", r.CID)
		}
		b, err := p.Blobs.Get(ctx, did, c)
		if errors.Is(err, blobs.ErrNotFound) || (err == nil && !b.Uploaded) {
			return errorf(ErrBlobNotFound, "Could not find blob: %s", r.CID)
		}
		if err != nil {
			return fmt.Errorf("pds: blob %s: %w", r.CID, err)
		}
		if r.MimeType != b.MimeType {
			return errorf(ErrInvalidMimeType, "Referenced Mimetype does not match stored blob. Expected: %s, Got: %s", b.MimeType, r.MimeType)
		}
		if r.Size >= 0 && r.Size != b.Size {
			return errorf(ErrInvalidInput, "Referenced size does not match stored blob %s. Expected: %d, Got: %d", r.CID, b.Size, r.Size)
		}
	}
	return nil
}
