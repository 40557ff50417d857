package eventlog

import (
	"bytes"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// Format 1: the format byte 0x01 followed by the DAG-CBOR of EventV1.
// These types are frozen: a change means a new format with its own types,
// and the decoder for this one stays forever (testdata/format_v1_*.golden).

// Format bytes.
const (
	formatTombstone byte = 0x00
	formatV1        byte = 0x01
)

// EventV1 is the stored form of an Event in format 1.
type EventV1 struct {
	Kind     string      `cborgen:"kind"`
	DID      string      `cborgen:"did"`
	Time     string      `cborgen:"time"`
	Commit   *CommitV1   `cborgen:"commit,omitempty"`
	Sync     *SyncV1     `cborgen:"sync,omitempty"`
	Identity *IdentityV1 `cborgen:"identity,omitempty"`
	Account  *AccountV1  `cborgen:"account,omitempty"`
	Private  *PrivateV1  `cborgen:"private,omitempty"`
}

// CommitV1 is the stored form of Commit in format 1.
type CommitV1 struct {
	Rev      string   `cborgen:"rev"`
	Since    *string  `cborgen:"since"`
	Commit   cid.Cid  `cborgen:"commit"`
	Data     cid.Cid  `cborgen:"data"`
	PrevData *cid.Cid `cborgen:"prevData"`
	Blocks   []byte   `cborgen:"blocks"`
	Ops      []*OpV1  `cborgen:"ops"`
}

// OpV1 is the stored form of Op in format 1.
type OpV1 struct {
	Action string   `cborgen:"action"`
	Path   string   `cborgen:"path"`
	CID    *cid.Cid `cborgen:"cid"`
	Prev   *cid.Cid `cborgen:"prev,omitempty"`
}

// SyncV1 is the stored form of Sync in format 1.
type SyncV1 struct {
	Rev    string  `cborgen:"rev"`
	Commit cid.Cid `cborgen:"commit"`
	Data   cid.Cid `cborgen:"data"`
	Blocks []byte  `cborgen:"blocks"`
}

// IdentityV1 is the stored form of Identity in format 1.
type IdentityV1 struct {
	Handle *string `cborgen:"handle"`
}

// AccountV1 is the stored form of Account in format 1.
type AccountV1 struct {
	Active bool    `cborgen:"active"`
	Status *string `cborgen:"status"`
}

// PrivateV1 is the stored form of Private in format 1. When Secret is set,
// Data is sealed (see seal.go).
type PrivateV1 struct {
	Type   string `cborgen:"type"`
	Secret bool   `cborgen:"secret"`
	Data   []byte `cborgen:"data"`
}

func optString[T ~string](s T) *string {
	if s == "" {
		return nil
	}
	v := string(s)
	return &v
}

func optCID(c cid.Cid) *cid.Cid {
	if !c.Defined() {
		return nil
	}
	return &c
}

func derefCID(c *cid.Cid) cid.Cid {
	if c == nil {
		return cid.Undef
	}
	return *c
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// toV1 converts e to its format-1 form. Private data must already be sealed.
func toV1(e *Event) *EventV1 {
	v := &EventV1{Kind: string(e.Kind), DID: string(e.DID), Time: string(e.Time)}
	switch {
	case e.Commit != nil:
		c := e.Commit
		ops := make([]*OpV1, len(c.Ops))
		for i, op := range c.Ops {
			ops[i] = &OpV1{Action: op.Action, Path: op.Path, CID: optCID(op.CID), Prev: optCID(op.Prev)}
		}
		v.Commit = &CommitV1{Rev: string(c.Rev), Since: optString(c.Since), Commit: c.Commit, Data: c.Data,
			PrevData: optCID(c.PrevData), Blocks: nonNil(c.Blocks), Ops: ops}
	case e.Sync != nil:
		s := e.Sync
		v.Sync = &SyncV1{Rev: string(s.Rev), Commit: s.Commit, Data: s.Data, Blocks: nonNil(s.Blocks)}
	case e.Identity != nil:
		v.Identity = &IdentityV1{Handle: optString(e.Identity.Handle)}
	case e.Account != nil:
		v.Account = &AccountV1{Active: e.Account.Active, Status: optString(e.Account.Status)}
	case e.Private != nil:
		v.Private = &PrivateV1{Type: e.Private.Type, Secret: e.Private.Secret, Data: nonNil(e.Private.Data)}
	}
	return v
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// fromV1 converts a decoded format-1 value into an Event (private data still sealed).
func fromV1(v *EventV1, e *Event) error {
	*e = Event{Kind: Kind(v.Kind), DID: syntax.DID(v.DID), Time: syntax.Datetime(v.Time)}
	n := 0
	switch {
	case v.Commit != nil:
		n++
		c := v.Commit
		if !c.Commit.Defined() || !c.Data.Defined() {
			return fmt.Errorf("%w: commit without commit or data cid", ErrCorrupt)
		}
		ops := make([]Op, len(c.Ops))
		for i, op := range c.Ops {
			if op == nil {
				return fmt.Errorf("%w: null op", ErrCorrupt)
			}
			ops[i] = Op{Action: op.Action, Path: op.Path, CID: derefCID(op.CID), Prev: derefCID(op.Prev)}
		}
		e.Commit = &Commit{Rev: syntax.TID(c.Rev), Since: syntax.TID(derefString(c.Since)), Commit: c.Commit,
			Data: c.Data, PrevData: derefCID(c.PrevData), Blocks: c.Blocks, Ops: ops}
	}
	if v.Sync != nil {
		n++
		if !v.Sync.Commit.Defined() || !v.Sync.Data.Defined() {
			return fmt.Errorf("%w: sync without commit or data cid", ErrCorrupt)
		}
		e.Sync = &Sync{Rev: syntax.TID(v.Sync.Rev), Commit: v.Sync.Commit, Data: v.Sync.Data, Blocks: v.Sync.Blocks}
	}
	if v.Identity != nil {
		n++
		e.Identity = &Identity{Handle: syntax.Handle(derefString(v.Identity.Handle))}
	}
	if v.Account != nil {
		n++
		e.Account = &Account{Active: v.Account.Active, Status: derefString(v.Account.Status)}
	}
	if v.Private != nil {
		n++
		e.Private = &Private{Type: v.Private.Type, Secret: v.Private.Secret, Data: v.Private.Data}
	}
	if n != 1 {
		return fmt.Errorf("%w: %d payloads", ErrCorrupt, n)
	}
	return nil
}

// encodeValue renders e (private data already sealed) as a stored value.
func encodeValue(e *Event) ([]byte, error) {
	size := 256
	switch {
	case e.Commit != nil:
		size += len(e.Commit.Blocks) + 128*len(e.Commit.Ops)
	case e.Sync != nil:
		size += len(e.Sync.Blocks)
	case e.Private != nil:
		size += len(e.Private.Data)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteByte(formatV1)
	if err := toV1(e).MarshalCBOR(buf); err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeValue parses a stored value into e (private data still sealed).
// A tombstone decodes as KindTombstone with no payload.
func decodeValue(val []byte, e *Event) error {
	if len(val) == 0 {
		return fmt.Errorf("%w: empty value", ErrCorrupt)
	}
	switch val[0] {
	case formatTombstone:
		*e = Event{Kind: KindTombstone}
		return nil
	case formatV1:
		var v EventV1
		r := bytes.NewReader(val[1:])
		if err := v.UnmarshalCBOR(r); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if r.Len() != 0 {
			return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, r.Len())
		}
		return fromV1(&v, e)
	default:
		return fmt.Errorf("%w: 0x%02x", ErrUnknownFormat, val[0])
	}
}

// encodeHead/decodeHead store a RepoHead as DAG-CBOR (HeadV1).
type HeadV1 struct {
	Rev    string  `cborgen:"rev"`
	Commit cid.Cid `cborgen:"commit"`
	Data   cid.Cid `cborgen:"data"`
	Seq    int64   `cborgen:"seq"`
}

func encodeHead(h RepoHead) ([]byte, error) {
	var buf bytes.Buffer
	if err := (&HeadV1{Rev: string(h.Rev), Commit: h.Commit, Data: h.Data, Seq: int64(h.Seq)}).MarshalCBOR(&buf); err != nil {
		return nil, fmt.Errorf("encode head: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeHead(b []byte) (RepoHead, error) {
	var v HeadV1
	if err := v.UnmarshalCBOR(bytes.NewReader(b)); err != nil {
		return RepoHead{}, fmt.Errorf("%w: head: %v", ErrCorrupt, err)
	}
	return RepoHead{Rev: syntax.TID(v.Rev), Commit: v.Commit, Data: v.Data, Seq: Seq(v.Seq)}, nil
}
