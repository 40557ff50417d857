package firehose

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"
	cbg "github.com/whyrusleeping/cbor-gen"

	"github.com/pdslog/pdslog/eventlog"
)

// Error and info names of com.atproto.sync.subscribeRepos.
const (
	ErrorFutureCursor    = "FutureCursor"
	ErrorConsumerTooSlow = "ConsumerTooSlow"
	ErrorInvalidRequest  = "InvalidRequest"
	InfoOutdatedCursor   = "OutdatedCursor"
)

// Messages sent with the error and info frames (the reference PDS's words).
const (
	messageFutureCursor    = "Cursor in the future."
	messageOutdatedCursor  = "Requested cursor exceeded limit. Possibly missing events"
	messageConsumerTooSlow = "Stream consumer too slow"
)

// Message types of the frame header ("t").
const (
	TypeCommit   = "#commit"
	TypeSync     = "#sync"
	TypeIdentity = "#identity"
	TypeAccount  = "#account"
	TypeInfo     = "#info"
)

var (
	// ErrNotPublic is returned by Encode for private and tombstone events,
	// which never leave the server.
	ErrNotPublic = errors.New("firehose: event is not public")
	// ErrInvalidEvent is returned by Encode for an event that cannot be put
	// on the wire (no seq, no time, a payload missing, a field too large).
	ErrInvalidEvent = errors.New("firehose: invalid event")
)

// Encode returns the wire frame of a public event: the DAG-CBOR header
// {op: 1, t: "#commit"|"#sync"|"#identity"|"#account"} followed by the
// DAG-CBOR body of that lexicon message. The bytes depend only on ev.
func Encode(ev *eventlog.Event) ([]byte, error) {
	if ev == nil || !ev.Kind.Public() {
		return nil, ErrNotPublic
	}
	if ev.Seq == 0 || ev.Seq > math.MaxInt64 || ev.Time == "" || ev.DID == "" {
		return nil, fmt.Errorf("%w: seq %d needs seq, did and time", ErrInvalidEvent, ev.Seq)
	}
	var (
		typ  string
		body cbg.CBORMarshaler
		size = 256
	)
	switch ev.Kind {
	case eventlog.KindCommit:
		if ev.Commit == nil {
			return nil, fmt.Errorf("%w: seq %d: commit without payload", ErrInvalidEvent, ev.Seq)
		}
		typ, body = TypeCommit, commitMessage(ev)
		size += len(ev.Commit.Blocks) + 128*len(ev.Commit.Ops)
	case eventlog.KindSync:
		if ev.Sync == nil {
			return nil, fmt.Errorf("%w: seq %d: sync without payload", ErrInvalidEvent, ev.Seq)
		}
		typ, body = TypeSync, &comatproto.SyncSubscribeRepos_Sync{
			Seq: int64(ev.Seq), Did: ev.DID.String(), Rev: ev.Sync.Rev.String(),
			Blocks: lexutil.LexBytes(ev.Sync.Blocks), Time: ev.Time.String(),
		}
		size += len(ev.Sync.Blocks)
	case eventlog.KindIdentity:
		if ev.Identity == nil {
			return nil, fmt.Errorf("%w: seq %d: identity without payload", ErrInvalidEvent, ev.Seq)
		}
		m := &comatproto.SyncSubscribeRepos_Identity{Seq: int64(ev.Seq), Did: ev.DID.String(), Time: ev.Time.String()}
		if h := ev.Identity.Handle.String(); h != "" {
			m.Handle = &h
		}
		typ, body = TypeIdentity, m
	case eventlog.KindAccount:
		if ev.Account == nil {
			return nil, fmt.Errorf("%w: seq %d: account without payload", ErrInvalidEvent, ev.Seq)
		}
		m := &comatproto.SyncSubscribeRepos_Account{Seq: int64(ev.Seq), Did: ev.DID.String(), Time: ev.Time.String(),
			Active: ev.Account.Active}
		// status says why an account is not active; it is absent when active.
		if s := ev.Account.Status; !ev.Account.Active && s != "" {
			m.Status = &s
		}
		typ, body = TypeAccount, m
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if err := frame(buf, &header{op: opMessage, t: typ}, body); err != nil {
		return nil, fmt.Errorf("%w: seq %d: %v", ErrInvalidEvent, ev.Seq, err)
	}
	return buf.Bytes(), nil
}

// commitMessage is the #commit body of a commit event. since is null for a
// repo's first commit; prevData is absent for it (the lexicon makes it
// optional, not nullable); the deprecated rebase, tooBig and blobs carry
// their empty values, as the lexicon still requires them.
func commitMessage(ev *eventlog.Event) *comatproto.SyncSubscribeRepos_Commit {
	c := ev.Commit
	m := &comatproto.SyncSubscribeRepos_Commit{
		Seq:    int64(ev.Seq),
		Repo:   ev.DID.String(),
		Commit: lexutil.LexLink(c.Commit),
		Rev:    c.Rev.String(),
		Blocks: lexutil.LexBytes(c.Blocks),
		Ops:    make([]*comatproto.SyncSubscribeRepos_RepoOp, 0, len(c.Ops)),
		Blobs:  []lexutil.LexLink{},
		Time:   ev.Time.String(),
	}
	if c.Since != "" {
		since := c.Since.String()
		m.Since = &since
	}
	if c.PrevData.Defined() {
		m.PrevData = link(c.PrevData)
	}
	for _, op := range c.Ops {
		o := &comatproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path}
		// cid is null for deletes; prev is absent for creates.
		if op.Action != eventlog.ActionDelete && op.CID.Defined() {
			o.Cid = link(op.CID)
		}
		if op.Action != eventlog.ActionCreate && op.Prev.Defined() {
			o.Prev = link(op.Prev)
		}
		m.Ops = append(m.Ops, o)
	}
	return m
}

func link(c cid.Cid) *lexutil.LexLink {
	l := lexutil.LexLink(c)
	return &l
}

// ErrorFrame returns an error frame: header {op: -1}, body {error, message}.
// The stream ends after it.
func ErrorFrame(name, message string) []byte {
	var buf bytes.Buffer
	if err := frame(&buf, &header{op: opError}, &errorBody{name: name, message: message}); err != nil {
		panic(fmt.Sprintf("firehose: encode error frame: %v", err)) // fixed small strings cannot fail
	}
	return buf.Bytes()
}

// InfoFrame returns an #info message frame {name, message}.
func InfoFrame(name, message string) []byte {
	var buf bytes.Buffer
	m := &comatproto.SyncSubscribeRepos_Info{Name: name}
	if message != "" {
		m.Message = &message
	}
	if err := frame(&buf, &header{op: opMessage, t: TypeInfo}, m); err != nil {
		panic(fmt.Sprintf("firehose: encode info frame: %v", err)) // fixed small strings cannot fail
	}
	return buf.Bytes()
}

// frame writes h then body.
func frame(buf *bytes.Buffer, h *header, body cbg.CBORMarshaler) error {
	w := cbg.NewCborWriter(buf)
	if err := h.marshalCBOR(w); err != nil {
		return err
	}
	return body.MarshalCBOR(w)
}

// Frame header ops.
const (
	opMessage = 1
	opError   = -1
)

// header is the frame header {op, t}: the same DAG-CBOR as indigo's
// events.EventHeader (t omitted when empty; keys in canonical order), which
// the tests pin byte for byte. It is written here so that the server does
// not link indigo's events package and the relay machinery behind it.
type header struct {
	op int64
	t  string
}

func (h *header) marshalCBOR(w *cbg.CborWriter) error {
	n := uint64(2)
	if h.t == "" {
		n = 1
	}
	if err := w.WriteMajorTypeHeader(cbg.MajMap, n); err != nil {
		return err
	}
	if h.t != "" {
		if err := writeString(w, "t"); err != nil {
			return err
		}
		if err := writeString(w, h.t); err != nil {
			return err
		}
	}
	if err := writeString(w, "op"); err != nil {
		return err
	}
	if h.op >= 0 {
		return w.WriteMajorTypeHeader(cbg.MajUnsignedInt, uint64(h.op))
	}
	return w.WriteMajorTypeHeader(cbg.MajNegativeInt, uint64(-h.op-1))
}

// errorBody is an error frame's body {error, message}, as indigo's
// events.ErrorFrame encodes it.
type errorBody struct {
	name, message string
}

func (e *errorBody) MarshalCBOR(wr io.Writer) error {
	w := cbg.NewCborWriter(wr)
	if err := w.WriteMajorTypeHeader(cbg.MajMap, 2); err != nil {
		return err
	}
	for _, s := range []string{"error", e.name, "message", e.message} {
		if err := writeString(w, s); err != nil {
			return err
		}
	}
	return nil
}

func writeString(w *cbg.CborWriter, s string) error {
	if err := w.WriteMajorTypeHeader(cbg.MajTextString, uint64(len(s))); err != nil {
		return err
	}
	_, err := w.WriteString(s)
	return err
}
