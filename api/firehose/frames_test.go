package firehose_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/firehose"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current encoder")

const (
	goldenDID  = syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	goldenTime = syntax.Datetime("2026-01-02T03:04:05.678Z")
)

var (
	cidCommit = eventlogtest.CID("commit")
	cidData   = eventlogtest.CID("data")
	cidPrev   = eventlogtest.CID("prev-data")
	cidA      = eventlogtest.CID("record a")
	cidB      = eventlogtest.CID("record b")
	cidB2     = eventlogtest.CID("record b v2")
	cidC      = eventlogtest.CID("record c")
)

func lnk(c cid.Cid) *lexutil.LexLink { l := lexutil.LexLink(c); return &l }
func str(s string) *string           { return &s }

// goldenCase is one pinned frame: how it is made, what indigo decodes it
// to, and which body keys DAG-CBOR carries (with null or absent ones).
type goldenCase struct {
	frame   func() ([]byte, error)
	want    events.XRPCStreamEvent
	keys    []string // every key of the body
	nullKey []string // keys present with a null value
}

func goldenCases() map[string]goldenCase {
	enc := func(ev *eventlog.Event) func() ([]byte, error) {
		return func() ([]byte, error) { return firehose.Encode(ev) }
	}
	fixed := func(b []byte) func() ([]byte, error) { return func() ([]byte, error) { return b, nil } }
	commitKeys := []string{"seq", "repo", "commit", "rev", "since", "blocks", "ops", "rebase", "tooBig", "blobs", "time"}
	return map[string]goldenCase{
		// A repo's first commit: since is null, prevData absent.
		"commit_first": {
			frame: enc(&eventlog.Event{Seq: 7, Kind: eventlog.KindCommit, DID: goldenDID, Time: goldenTime, Commit: &eventlog.Commit{
				Rev: "3lbqyd2lmzc2a", Commit: cidCommit, Data: cidData, Blocks: []byte("car bytes"),
				Ops: []eventlog.Op{{Action: eventlog.ActionCreate, Path: "app.bsky.feed.post/3lbqyd2lmzc2b", CID: cidA}}}}),
			want: events.XRPCStreamEvent{RepoCommit: &comatproto.SyncSubscribeRepos_Commit{
				Seq: 7, Repo: goldenDID.String(), Commit: lexutil.LexLink(cidCommit), Rev: "3lbqyd2lmzc2a", Since: nil,
				Blocks: []byte("car bytes"), Time: goldenTime.String(),
				Ops: []*comatproto.SyncSubscribeRepos_RepoOp{{Action: "create", Path: "app.bsky.feed.post/3lbqyd2lmzc2b", Cid: lnk(cidA)}}}},
			keys: commitKeys, nullKey: []string{"since"},
		},
		// A later commit: since and prevData set; create without prev,
		// update with both, delete with a null cid.
		"commit": {
			frame: enc(&eventlog.Event{Seq: 1234567, Kind: eventlog.KindCommit, DID: goldenDID, Time: goldenTime, Commit: &eventlog.Commit{
				Rev: "3lbqyd2lmzc2c", Since: "3lbqyd2lmzc2a", Commit: cidCommit, Data: cidData, PrevData: cidPrev, Blocks: []byte("car slice"),
				Ops: []eventlog.Op{
					{Action: eventlog.ActionCreate, Path: "app.bsky.feed.like/3lbqyd2lmzc2d", CID: cidC},
					{Action: eventlog.ActionUpdate, Path: "app.bsky.feed.post/3lbqyd2lmzc2b", CID: cidB2, Prev: cidB},
					{Action: eventlog.ActionDelete, Path: "app.bsky.feed.post/3lbqyd2lmzc2e", Prev: cidA},
				}}}),
			want: events.XRPCStreamEvent{RepoCommit: &comatproto.SyncSubscribeRepos_Commit{
				Seq: 1234567, Repo: goldenDID.String(), Commit: lexutil.LexLink(cidCommit), Rev: "3lbqyd2lmzc2c", Since: str("3lbqyd2lmzc2a"),
				PrevData: lnk(cidPrev), Blocks: []byte("car slice"), Time: goldenTime.String(),
				Ops: []*comatproto.SyncSubscribeRepos_RepoOp{
					{Action: "create", Path: "app.bsky.feed.like/3lbqyd2lmzc2d", Cid: lnk(cidC)},
					{Action: "update", Path: "app.bsky.feed.post/3lbqyd2lmzc2b", Cid: lnk(cidB2), Prev: lnk(cidB)},
					{Action: "delete", Path: "app.bsky.feed.post/3lbqyd2lmzc2e", Prev: lnk(cidA)},
				}}},
			keys: append([]string{"prevData"}, commitKeys...),
		},
		"sync": {
			frame: enc(&eventlog.Event{Seq: 8, Kind: eventlog.KindSync, DID: goldenDID, Time: goldenTime, Sync: &eventlog.Sync{
				Rev: "3lbqyd2lmzc2a", Commit: cidCommit, Data: cidData, Blocks: []byte("commit car")}}),
			want: events.XRPCStreamEvent{RepoSync: &comatproto.SyncSubscribeRepos_Sync{
				Seq: 8, Did: goldenDID.String(), Rev: "3lbqyd2lmzc2a", Blocks: []byte("commit car"), Time: goldenTime.String()}},
			keys: []string{"seq", "did", "blocks", "rev", "time"},
		},
		"identity": {
			frame: enc(&eventlog.Event{Seq: 5, Kind: eventlog.KindIdentity, DID: goldenDID, Time: goldenTime,
				Identity: &eventlog.Identity{Handle: "alice.example.com"}}),
			want: events.XRPCStreamEvent{RepoIdentity: &comatproto.SyncSubscribeRepos_Identity{
				Seq: 5, Did: goldenDID.String(), Handle: str("alice.example.com"), Time: goldenTime.String()}},
			keys: []string{"seq", "did", "time", "handle"},
		},
		"identity_no_handle": {
			frame: enc(&eventlog.Event{Seq: 5, Kind: eventlog.KindIdentity, DID: goldenDID, Time: goldenTime, Identity: &eventlog.Identity{}}),
			want: events.XRPCStreamEvent{RepoIdentity: &comatproto.SyncSubscribeRepos_Identity{
				Seq: 5, Did: goldenDID.String(), Time: goldenTime.String()}},
			keys: []string{"seq", "did", "time"},
		},
		// Active: no status key at all.
		"account_active": {
			frame: enc(&eventlog.Event{Seq: 6, Kind: eventlog.KindAccount, DID: goldenDID, Time: goldenTime, Account: &eventlog.Account{Active: true}}),
			want: events.XRPCStreamEvent{RepoAccount: &comatproto.SyncSubscribeRepos_Account{
				Seq: 6, Did: goldenDID.String(), Active: true, Time: goldenTime.String()}},
			keys: []string{"seq", "did", "time", "active"},
		},
		"account_deactivated": {
			frame: enc(&eventlog.Event{Seq: 9, Kind: eventlog.KindAccount, DID: goldenDID, Time: goldenTime,
				Account: &eventlog.Account{Active: false, Status: "deactivated"}}),
			want: events.XRPCStreamEvent{RepoAccount: &comatproto.SyncSubscribeRepos_Account{
				Seq: 9, Did: goldenDID.String(), Active: false, Status: str("deactivated"), Time: goldenTime.String()}},
			keys: []string{"seq", "did", "time", "active", "status"},
		},
		"info_outdated_cursor": {
			frame: fixed(firehose.InfoFrame(firehose.InfoOutdatedCursor, "Requested cursor exceeded limit. Possibly missing events")),
			want: events.XRPCStreamEvent{RepoInfo: &comatproto.SyncSubscribeRepos_Info{
				Name: "OutdatedCursor", Message: str("Requested cursor exceeded limit. Possibly missing events")}},
			keys: []string{"name", "message"},
		},
		"error_future_cursor": {
			frame: fixed(firehose.ErrorFrame(firehose.ErrorFutureCursor, "Cursor in the future.")),
			want:  events.XRPCStreamEvent{Error: &events.ErrorFrame{Error: "FutureCursor", Message: "Cursor in the future."}},
			keys:  []string{"error", "message"},
		},
		"error_consumer_too_slow": {
			frame: fixed(firehose.ErrorFrame(firehose.ErrorConsumerTooSlow, "Stream consumer too slow")),
			want:  events.XRPCStreamEvent{Error: &events.ErrorFrame{Error: "ConsumerTooSlow", Message: "Stream consumer too slow"}},
			keys:  []string{"error", "message"},
		},
	}
}

func goldenPath(name string) string { return filepath.Join("testdata", "frame_"+name+".golden") }

func readGolden(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func writeGolden(t *testing.T, path string, b []byte) {
	t.Helper()
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for len(h) > 64 {
		sb.WriteString(h[:64] + "\n")
		h = h[64:]
	}
	sb.WriteString(h + "\n")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// splitFrame returns a frame's header (decoded with indigo's EventHeader)
// and its body bytes.
func splitFrame(t *testing.T, b []byte) (events.EventHeader, []byte) {
	t.Helper()
	r := bytes.NewReader(b)
	var h events.EventHeader
	if err := h.UnmarshalCBOR(r); err != nil {
		t.Fatalf("header: %v", err)
	}
	return h, b[len(b)-r.Len():]
}

// Every frame kind is pinned by a golden file; each decodes with indigo's
// types to the message the lexicon describes; the header and body are
// canonical DAG-CBOR (a generic decode and re-encode gives the same bytes);
// and the body carries exactly the keys the lexicon requires, with since
// null (not absent) on a first commit and status absent when active.
func TestFrameGoldens(t *testing.T) {
	cases := goldenCases()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := tc.frame()
			if err != nil {
				t.Fatal(err)
			}
			path := goldenPath(name)
			if *update {
				writeGolden(t, path, got)
			}
			if want := readGolden(t, path); !bytes.Equal(got, want) {
				t.Fatalf("frame differs from %s:\n got %x\nwant %x", path, got, want)
			}
			f, err := decodeFrame(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tc.want, f.evt, cmpLink); diff != "" {
				t.Fatalf("indigo decodes to (-want +got):\n%s", diff)
			}
			h, body := splitFrame(t, got)
			wantOp, wantT := int64(events.EvtKindMessage), f.typ
			if tc.want.Error != nil {
				wantOp, wantT = events.EvtKindErrorFrame, ""
			}
			if h.Op != wantOp || h.MsgType != wantT {
				t.Fatalf("header %+v, want op %d t %q", h, wantOp, wantT)
			}
			// The header is byte for byte indigo's own encoding of it.
			var ih bytes.Buffer
			if err := (&events.EventHeader{Op: wantOp, MsgType: wantT}).MarshalCBOR(&ih); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, ih.Bytes()) {
				t.Fatalf("header bytes %x, indigo's %x", got[:len(got)-len(body)], ih.Bytes())
			}
			for _, part := range [][]byte{got[:len(got)-len(body)], body} {
				m, err := atdata.UnmarshalCBOR(part)
				if err != nil {
					t.Fatalf("generic decode: %v", err)
				}
				again, err := atdata.MarshalCBOR(m)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, part) {
					t.Fatalf("not canonical DAG-CBOR:\n got %x\nre-encoded %x", part, again)
				}
			}
			m, err := atdata.UnmarshalCBOR(body)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			if diff := cmp.Diff(tc.keys, keys, cmpSorted); diff != "" {
				t.Fatalf("body keys (-want +got):\n%s", diff)
			}
			for _, k := range tc.nullKey {
				if m[k] != nil {
					t.Fatalf("%s = %v, want null", k, m[k])
				}
			}
			if _, ok := m["blobs"]; ok {
				// The deprecated fields keep their empty values.
				if b, ok := m["blobs"].([]any); !ok || len(b) != 0 || m["rebase"] != false || m["tooBig"] != false {
					t.Fatalf("blobs %v rebase %v tooBig %v, want [] false false", m["blobs"], m["rebase"], m["tooBig"])
				}
			}
			if ops, ok := m["ops"].([]any); ok {
				for _, o := range ops {
					op := o.(map[string]any)
					cidV, hasCID := op["cid"]
					_, hasPrev := op["prev"]
					switch op["action"] {
					case "create":
						if cidV == nil || hasPrev {
							t.Fatalf("create op %v: want cid and no prev", op)
						}
					case "update":
						if cidV == nil || !hasPrev {
							t.Fatalf("update op %v: want cid and prev", op)
						}
					case "delete":
						if !hasCID || cidV != nil || !hasPrev {
							t.Fatalf("delete op %v: want cid null and prev", op)
						}
					}
				}
			}
		})
	}
	files, err := filepath.Glob(filepath.Join("testdata", "frame_*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(cases) {
		t.Fatalf("%d golden files for %d cases (a stale file, or run with -update)", len(files), len(cases))
	}
}

var cmpLink = cmp.Comparer(func(a, b lexutil.LexLink) bool { return cid.Cid(a).Equals(cid.Cid(b)) })

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// The error frame is byte for byte indigo's events.ErrorFrame after its
// header, for any name and message.
func TestErrorFrameMatchesIndigo(t *testing.T) {
	for _, tc := range []struct{ name, msg string }{
		{"FutureCursor", "Cursor in the future."}, {"ConsumerTooSlow", ""}, {"X", strings.Repeat("é", 300)},
	} {
		var want bytes.Buffer
		if err := (&events.EventHeader{Op: events.EvtKindErrorFrame}).MarshalCBOR(&want); err != nil {
			t.Fatal(err)
		}
		if err := (&events.ErrorFrame{Error: tc.name, Message: tc.msg}).MarshalCBOR(&want); err != nil {
			t.Fatal(err)
		}
		if got := firehose.ErrorFrame(tc.name, tc.msg); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%s: got %x, indigo %x", tc.name, got, want.Bytes())
		}
	}
}

// Private and tombstone events have no frame; events missing what the
// wire needs are refused.
func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		ev   *eventlog.Event
		want error
	}{
		{"private", &eventlog.Event{Seq: 1, Kind: eventlog.KindPrivate, DID: goldenDID, Time: goldenTime,
			Private: &eventlog.Private{Type: "account.password", Data: []byte("secret")}}, firehose.ErrNotPublic},
		{"tombstone", &eventlog.Event{Seq: 1, Kind: eventlog.KindTombstone}, firehose.ErrNotPublic},
		{"nil", nil, firehose.ErrNotPublic},
		{"no seq", &eventlog.Event{Kind: eventlog.KindIdentity, DID: goldenDID, Time: goldenTime, Identity: &eventlog.Identity{}}, firehose.ErrInvalidEvent},
		{"no time", &eventlog.Event{Seq: 1, Kind: eventlog.KindIdentity, DID: goldenDID, Identity: &eventlog.Identity{}}, firehose.ErrInvalidEvent},
		{"no payload", &eventlog.Event{Seq: 1, Kind: eventlog.KindCommit, DID: goldenDID, Time: goldenTime}, firehose.ErrInvalidEvent},
		{"blocks too large", &eventlog.Event{Seq: 1, Kind: eventlog.KindSync, DID: goldenDID, Time: goldenTime, Sync: &eventlog.Sync{
			Rev: "3lbqyd2lmzc2a", Commit: cidCommit, Data: cidData, Blocks: make([]byte, 3<<20)}}, firehose.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := firehose.Encode(tt.ev); !errors.Is(err, tt.want) {
				t.Fatalf("Encode = %x, %v; want %v", f, err, tt.want)
			}
		})
	}
}

// FuzzEncode: whatever a public event holds, Encode either refuses it or
// produces one frame that indigo decodes back to the same fields, with
// nothing after the body.
func FuzzEncode(f *testing.F) {
	f.Add(uint64(1), uint8(0), "did:plc:abc", "2026-01-02T03:04:05.678Z", "3lbqyd2lmzc2a", "", []byte("car"), "a.test", true, "", uint8(2))
	f.Add(uint64(99), uint8(3), "did:web:example.com", "2026-01-02T03:04:05Z", "3lbqyd2lmzc2c", "3lbqyd2lmzc2a", []byte{}, "", false, "deleted", uint8(0))
	f.Fuzz(func(t *testing.T, seq uint64, kind uint8, did, at, rev, since string, blocks []byte, handle string, active bool, status string, nops uint8) {
		ev := &eventlog.Event{Seq: eventlog.Seq(seq), DID: syntax.DID(did), Time: syntax.Datetime(at)}
		switch kind % 4 {
		case 0:
			ev.Kind = eventlog.KindCommit
			c := &eventlog.Commit{Rev: syntax.TID(rev), Since: syntax.TID(since), Commit: cidCommit, Data: cidData, Blocks: blocks}
			if since != "" {
				c.PrevData = cidPrev
			}
			for i := range int(nops % 8) {
				op := eventlog.Op{Action: []string{"create", "update", "delete"}[i%3], Path: handle + "/" + rev, CID: cidA, Prev: cidB}
				c.Ops = append(c.Ops, op)
			}
			ev.Commit = c
		case 1:
			ev.Kind, ev.Sync = eventlog.KindSync, &eventlog.Sync{Rev: syntax.TID(rev), Commit: cidCommit, Data: cidData, Blocks: blocks}
		case 2:
			ev.Kind, ev.Identity = eventlog.KindIdentity, &eventlog.Identity{Handle: syntax.Handle(handle)}
		case 3:
			ev.Kind, ev.Account = eventlog.KindAccount, &eventlog.Account{Active: active, Status: status}
		}
		b, err := firehose.Encode(ev)
		if err != nil {
			if !errors.Is(err, firehose.ErrInvalidEvent) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		fr, err := decodeFrame(b)
		if err != nil {
			t.Fatalf("indigo cannot decode %x: %v", b, err)
		}
		if fr.seq != int64(seq) || fr.did() != did {
			t.Fatalf("seq %d did %q, want %d %q", fr.seq, fr.did(), seq, did)
		}
		switch e := fr.evt; {
		case e.RepoCommit != nil:
			c := e.RepoCommit
			if c.Rev != rev || c.Time != at || !bytes.Equal(c.Blocks, blocks) || len(c.Ops) != int(nops%8) ||
				(since == "") != (c.Since == nil) || (since == "") != (c.PrevData == nil) {
				t.Fatalf("commit round trip: %+v", c)
			}
			for _, op := range c.Ops {
				if (op.Action == "delete") != (op.Cid == nil) || (op.Action == "create") != (op.Prev == nil) {
					t.Fatalf("op %+v", op)
				}
			}
		case e.RepoSync != nil:
			if e.RepoSync.Rev != rev || !bytes.Equal(e.RepoSync.Blocks, blocks) {
				t.Fatalf("sync round trip: %+v", e.RepoSync)
			}
		case e.RepoIdentity != nil:
			if (handle == "") != (e.RepoIdentity.Handle == nil) || (handle != "" && *e.RepoIdentity.Handle != handle) {
				t.Fatalf("identity round trip: %+v", e.RepoIdentity)
			}
		case e.RepoAccount != nil:
			a := e.RepoAccount
			wantStatus := !active && status != ""
			if a.Active != active || (a.Status != nil) != wantStatus || (wantStatus && *a.Status != status) {
				t.Fatalf("account round trip: %+v", a)
			}
		default:
			t.Fatalf("decoded to %+v", fr.evt)
		}
	})
}
