package eventlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// VerifyError is the first divergence Verify found.
type VerifyError struct {
	Seq    Seq
	DID    syntax.DID
	Reason string
}

func (e *VerifyError) Error() string {
	if e.DID == "" {
		return fmt.Sprintf("eventlog: verify: seq %d: %s", e.Seq, e.Reason)
	}
	return fmt.Sprintf("eventlog: verify: seq %d (%s): %s", e.Seq, e.DID, e.Reason)
}

// VerifyOptions configure Verify; nil means defaults.
type VerifyOptions struct {
	// Check, if set, is called for every non-tombstone event after the
	// chain checks, for checks the log cannot do itself (commit signatures,
	// MST roots). An error it returns is reported as the divergence.
	Check func(ctx context.Context, ev *Event) error
	// Progress, if set, is called after every event with its seq.
	Progress func(seq Seq)
}

type chain struct {
	rev  syntax.TID
	data cid.Cid
	head RepoHead
}

// Verify reads the whole durable log and checks its invariants: seqs dense
// from 1, every event decodes, each repo's commits chain (since names the
// previous rev, revs increase, prevData names the previous MST root), and
// each repo's stored head is its last commit or sync. It returns the first
// divergence as a *VerifyError, or nil.
func (l *Log) Verify(ctx context.Context, opts *VerifyOptions) error {
	if opts == nil {
		opts = &VerifyOptions{}
	}
	it, err := l.Iter(ctx, 0)
	if err != nil {
		return err
	}
	defer it.Close()
	repos := map[syntax.DID]*chain{}
	for it.Next() {
		ev := it.Event()
		if err := verifyChain(repos, ev); err != nil {
			return err
		}
		if opts.Check != nil && ev.Kind != KindTombstone {
			if err := opts.Check(ctx, ev); err != nil {
				return &VerifyError{Seq: ev.Seq, DID: ev.DID, Reason: err.Error()}
			}
		}
		if opts.Progress != nil {
			opts.Progress(ev.Seq)
		}
	}
	if err := it.Close(); err != nil {
		var seq Seq
		if ev := it.Event(); ev != nil {
			seq = ev.Seq
		}
		return &VerifyError{Seq: seq + 1, Reason: err.Error()}
	}
	for did, c := range repos {
		h, err := l.RepoHead(ctx, did)
		if errors.Is(err, ErrNotFound) {
			return &VerifyError{Seq: c.head.Seq, DID: did, Reason: "repo has commits but no stored head"}
		}
		if err != nil {
			return err
		}
		if h.Seq != c.head.Seq || h.Rev != c.head.Rev || !h.Commit.Equals(c.head.Commit) || !h.Data.Equals(c.head.Data) {
			return &VerifyError{Seq: c.head.Seq, DID: did,
				Reason: fmt.Sprintf("stored head (seq %d rev %s) is not the last commit (seq %d rev %s)", h.Seq, h.Rev, c.head.Seq, c.head.Rev)}
		}
	}
	return nil
}

func verifyChain(repos map[syntax.DID]*chain, ev *Event) error {
	fail := func(format string, args ...any) error {
		return &VerifyError{Seq: ev.Seq, DID: ev.DID, Reason: fmt.Sprintf(format, args...)}
	}
	c := repos[ev.DID]
	switch ev.Kind {
	case KindCommit:
		cm := ev.Commit
		var rev syntax.TID
		var data cid.Cid
		if c != nil {
			rev, data = c.rev, c.data
		}
		if cm.Since != rev {
			return fail("commit since %q, previous rev %q", cm.Since, rev)
		}
		if cm.Rev <= rev {
			return fail("rev %q does not follow %q", cm.Rev, rev)
		}
		if c != nil && !cm.PrevData.Equals(data) {
			return fail("prevData %s, previous data %s", cm.PrevData, data)
		}
		repos[ev.DID] = &chain{rev: cm.Rev, data: cm.Data, head: RepoHead{Rev: cm.Rev, Commit: cm.Commit, Data: cm.Data, Seq: ev.Seq}}
	case KindSync:
		s := ev.Sync
		reannounce := c != nil && s.Rev == c.rev && s.Commit.Equals(c.head.Commit) && s.Data.Equals(c.data)
		if c != nil && s.Rev <= c.rev && !reannounce {
			return fail("sync rev %q does not follow %q", s.Rev, c.rev)
		}
		repos[ev.DID] = &chain{rev: s.Rev, data: s.Data, head: RepoHead{Rev: s.Rev, Commit: s.Commit, Data: s.Data, Seq: ev.Seq}}
	case KindAccount:
		if ev.Account.Status == "deleted" && c != nil {
			// The account's earlier events are purged (or about to be); its
			// head goes with them.
			delete(repos, ev.DID)
		}
	}
	return nil
}
