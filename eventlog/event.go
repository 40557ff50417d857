package eventlog

import (
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// Seq is a position in the log: dense from 1; 0 means "before the first event".
// Cursors everywhere mean "last applied".
type Seq uint64

// Kind says which payload an Event carries.
type Kind string

// Event kinds. Commit, Sync, Identity and Account are the firehose's public
// kinds; Private events never leave the server; Tombstone marks a purged seq.
const (
	KindCommit    Kind = "commit"
	KindSync      Kind = "sync"
	KindIdentity  Kind = "identity"
	KindAccount   Kind = "account"
	KindPrivate   Kind = "private"
	KindTombstone Kind = "tombstone"
)

// Public reports whether events of this kind appear on the firehose.
func (k Kind) Public() bool {
	switch k {
	case KindCommit, KindSync, KindIdentity, KindAccount:
		return true
	}
	return false
}

// Event is one entry of the log. Exactly the payload named by Kind is set.
type Event struct {
	Seq  Seq             // assigned by Append
	Kind Kind            // which payload is set
	DID  syntax.DID      // the repo/account the event is about
	Time syntax.Datetime // when it was appended (filled by Append if empty)

	Commit   *Commit
	Sync     *Sync
	Identity *Identity
	Account  *Account
	Private  *Private
}

// Op is one record operation of a commit, as on the firehose.
type Op struct {
	Action string  // "create", "update" or "delete"
	Path   string  // collection/rkey
	CID    cid.Cid // new record CID; cid.Undef for deletes
	Prev   cid.Cid // previous record CID; cid.Undef for creates
}

// Op actions.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// Commit is a repo commit: the firehose #commit payload plus the commit's
// own MST root (Data), which becomes the next commit's PrevData.
type Commit struct {
	Rev      syntax.TID // the commit's rev
	Since    syntax.TID // rev of the previous commit; "" for the first
	Commit   cid.Cid    // CID of the signed commit block
	Data     cid.Cid    // MST root this commit points to
	PrevData cid.Cid    // MST root of the previous commit; cid.Undef for the first
	Blocks   []byte     // CAR v1 slice: new blocks and proof blocks
	Ops      []Op
}

// Sync declares a repo's current state (firehose #sync): the head resets to it.
type Sync struct {
	Rev    syntax.TID
	Commit cid.Cid
	Data   cid.Cid
	Blocks []byte // CAR v1 holding the signed commit block
}

// Identity says the account's identity (handle, DID document) may have changed.
type Identity struct {
	Handle syntax.Handle // "" when not known
}

// Account carries an account's hosting status change.
type Account struct {
	Active bool
	Status string // "" when active; "deactivated", "deleted", "takendown", …
}

// Private is a server-only fact (account secrets, sessions, blob metadata …).
// Its Data is owned by the package that wrote it; when Secret is set the log
// seals Data at rest and opens it again on read.
type Private struct {
	Type   string
	Secret bool
	Data   []byte
}

// RepoHead is the latest commit or sync of a repo.
type RepoHead struct {
	Rev    syntax.TID
	Commit cid.Cid
	Data   cid.Cid
	Seq    Seq
}

// validate checks that e is well formed for Append.
func (e *Event) validate() error {
	if e == nil {
		return fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	if e.DID == "" {
		return fmt.Errorf("%w: missing did", ErrInvalidEvent)
	}
	n := 0
	for _, set := range []bool{e.Commit != nil, e.Sync != nil, e.Identity != nil, e.Account != nil, e.Private != nil} {
		if set {
			n++
		}
	}
	var ok bool
	switch e.Kind {
	case KindCommit:
		ok = e.Commit != nil
	case KindSync:
		ok = e.Sync != nil
	case KindIdentity:
		ok = e.Identity != nil
	case KindAccount:
		ok = e.Account != nil
	case KindPrivate:
		ok = e.Private != nil
	default:
		return fmt.Errorf("%w: kind %q cannot be appended", ErrInvalidEvent, e.Kind)
	}
	if !ok || n != 1 {
		return fmt.Errorf("%w: kind %s needs exactly its own payload", ErrInvalidEvent, e.Kind)
	}
	switch e.Kind {
	case KindCommit:
		c := e.Commit
		if c.Rev == "" || !c.Commit.Defined() || !c.Data.Defined() {
			return fmt.Errorf("%w: commit needs rev, commit and data", ErrInvalidEvent)
		}
		for _, op := range c.Ops {
			switch op.Action {
			case ActionCreate, ActionUpdate, ActionDelete:
			default:
				return fmt.Errorf("%w: op action %q", ErrInvalidEvent, op.Action)
			}
		}
	case KindSync:
		if e.Sync.Rev == "" || !e.Sync.Commit.Defined() || !e.Sync.Data.Defined() {
			return fmt.Errorf("%w: sync needs rev, commit and data", ErrInvalidEvent)
		}
	case KindPrivate:
		if e.Private.Type == "" {
			return fmt.Errorf("%w: private event needs a type", ErrInvalidEvent)
		}
	}
	return nil
}
