package commit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// SigningKeyEvent returns the event that records key as did's signing key
// (events.TypeSigningKey; the key in force for a repo is the latest such
// event before a commit).
func SigningKeyEvent(did syntax.DID, key atcrypto.PrivateKeyExportable) *eventlog.Event {
	return events.Must(did, &events.SigningKey{Key: key})
}

// ErrVerify is what Verifier.Check's errors match.
var ErrVerify = errors.New("commit: verification failed")

// Verifier re-checks commit and sync events read in log order: the signed
// commit in the CAR slice (its CID, DID, rev, data root and signature under
// the repo's signing key), each create/update record block, and that
// inverting the ops on the event's blocks alone gives back prevData (the
// sync v1.1 proof). It learns signing keys from events.TypeSigningKey events. Use
// Check as eventlog.VerifyOptions.Check.
type Verifier struct {
	mu   sync.Mutex
	keys map[syntax.DID]atcrypto.PublicKey
}

// NewVerifier returns a Verifier that knows no keys yet.
func NewVerifier() *Verifier { return &Verifier{keys: map[syntax.DID]atcrypto.PublicKey{}} }

// Check verifies one event; events must come in log order.
func (v *Verifier) Check(ctx context.Context, ev *eventlog.Event) error {
	switch ev.Kind {
	case eventlog.KindPrivate:
		if ev.Private.Type != events.TypeSigningKey {
			return nil
		}
		var sk events.SigningKey
		if err := events.Unmarshal(ev.Private.Data, &sk); err != nil {
			return fmt.Errorf("%w: signing key: %v", ErrVerify, err)
		}
		pub, err := sk.Key.PublicKey()
		if err != nil {
			return fmt.Errorf("%w: signing key: %v", ErrVerify, err)
		}
		v.mu.Lock()
		v.keys[ev.DID] = pub
		v.mu.Unlock()
		return nil
	case eventlog.KindAccount:
		if ev.Account.Status == "deleted" {
			v.mu.Lock()
			delete(v.keys, ev.DID)
			v.mu.Unlock()
		}
		return nil
	case eventlog.KindCommit:
		c := ev.Commit
		blocks, err := v.checkSigned(ev.DID, c.Blocks, c.Commit, c.Rev, c.Data)
		if err != nil {
			return err
		}
		ops := make([]mst.Op, len(c.Ops))
		for i, op := range c.Ops {
			ops[i] = mst.Op{Key: op.Path, Prev: op.Prev, Val: op.CID}
			if op.CID.Defined() {
				if _, ok := blocks[op.CID]; !ok {
					return fmt.Errorf("%w: record %s (%s) not in the commit's blocks", ErrVerify, op.Path, op.CID)
				}
			}
		}
		if !c.PrevData.Defined() {
			return nil // a first commit has nothing to invert to
		}
		got, err := mst.Invert(ctx, blocks, c.Data, ops)
		if err != nil {
			return fmt.Errorf("%w: invert ops: %v", ErrVerify, err)
		}
		if !got.Equals(c.PrevData) {
			return fmt.Errorf("%w: inverting the ops gives root %s, prevData is %s", ErrVerify, got, c.PrevData)
		}
		return nil
	case eventlog.KindSync:
		s := ev.Sync
		_, err := v.checkSigned(ev.DID, s.Blocks, s.Commit, s.Rev, s.Data)
		return err
	}
	return nil
}

// checkSigned reads a CAR slice (verifying every block's hash) and checks
// its signed commit against the event's fields and the repo's key.
func (v *Verifier) checkSigned(did syntax.DID, slice []byte, commitCID cid.Cid, rev syntax.TID, data cid.Cid) (mst.MemBlocks, error) {
	roots, list, err := car.Unmarshal(slice, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: blocks: %v", ErrVerify, err)
	}
	if len(roots) != 1 || !roots[0].Equals(commitCID) {
		return nil, fmt.Errorf("%w: CAR roots %v, commit is %s", ErrVerify, roots, commitCID)
	}
	blocks := make(mst.MemBlocks, len(list))
	for _, b := range list {
		blocks[b.CID] = b.Data
	}
	raw, ok := blocks[commitCID]
	if !ok {
		return nil, fmt.Errorf("%w: commit block %s missing", ErrVerify, commitCID)
	}
	var sc indigorepo.Commit
	if err := sc.UnmarshalCBOR(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("%w: decode commit: %v", ErrVerify, err)
	}
	if err := sc.VerifyStructure(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	if sc.DID != did.String() || sc.Rev != rev.String() || !sc.Data.Equals(data) || sc.Prev != nil {
		return nil, fmt.Errorf("%w: signed commit (did %s rev %s data %s) does not match the event", ErrVerify, sc.DID, sc.Rev, sc.Data)
	}
	v.mu.Lock()
	pub := v.keys[did]
	v.mu.Unlock()
	if pub == nil {
		return nil, fmt.Errorf("%w: no signing key recorded for %s", ErrVerify, did)
	}
	if err := sc.VerifySignature(pub); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrVerify, err)
	}
	return blocks, nil
}
