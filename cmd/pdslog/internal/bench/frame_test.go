package bench

import (
	"bytes"
	"crypto/sha256"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// A frame is scanned for its type, seq, time and repo, whatever the key
// order and whatever it holds besides.
func TestParseFrame(t *testing.T) {
	// {"t": "#commit", "op": 1} {"ops": [], "rev": "x", "blocks": h'00ff', "seq": 300, "time": "…", "repo": "did:x", "tooBig": false}
	raw := []byte{0xa2, 0x61, 't', 0x67, '#', 'c', 'o', 'm', 'm', 'i', 't', 0x62, 'o', 'p', 0x01,
		0xa7, 0x63, 'o', 'p', 's', 0x80, 0x63, 'r', 'e', 'v', 0x61, 'x', 0x66, 'b', 'l', 'o', 'c', 'k', 's', 0x42, 0x00, 0xff,
		0x63, 's', 'e', 'q', 0x19, 0x01, 0x2c, 0x64, 't', 'i', 'm', 'e', 0x61, 'T', 0x64, 'r', 'e', 'p', 'o', 0x65, 'd', 'i', 'd', ':', 'x',
		0x66, 't', 'o', 'o', 'B', 'i', 'g', 0xf4}
	f, err := parseFrame(raw)
	if err != nil || f != (frame{op: 1, typ: "#commit", seq: 300, time: "T", repo: "did:x"}) {
		t.Fatalf("%+v %v", f, err)
	}
	for i := range raw {
		if _, err := parseFrame(raw[:i]); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
	// an error frame: op -1
	f, err = parseFrame([]byte{0xa1, 0x62, 'o', 'p', 0x20, 0xa0})
	if err != nil || f.op != -1 {
		t.Fatalf("error frame: %+v %v", f, err)
	}
}

func testCID(t testing.TB, data string) lexutil.LexLink {
	t.Helper()
	h := sha256.Sum256([]byte(data))
	mh, err := multihash.Encode(h[:], multihash.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	return lexutil.LexLink(cid.NewCidV1(cid.DagCBOR, mh))
}

type frameCase struct {
	name string
	raw  []byte
	want frame
}

// indigoFrames are one frame of every kind a subscriber meets, encoded by
// indigo (commit and sync with blocks bytes of CAR slice), with what the
// scanner must read of each.
func indigoFrames(t testing.TB, blocks int) []frameCase {
	t.Helper()
	const did, tm = "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "2026-01-02T03:04:05.678Z"
	c := testCID(t, "commit")
	handle, status, since, msg := "alice.test", "deactivated", "3lbqyd2lmzc2a", "cursor too old"
	car := bytes.Repeat([]byte{0xa5}, blocks)
	var cases []frameCase
	add := func(name string, evt *events.XRPCStreamEvent, want frame) {
		var buf bytes.Buffer
		if err := evt.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, frameCase{name, buf.Bytes(), want})
	}
	add("#commit", &events.XRPCStreamEvent{RepoCommit: &comatproto.SyncSubscribeRepos_Commit{Seq: 7, Repo: did, Time: tm,
		Commit: c, Rev: "3lbqyd2lmzc2b", Since: &since, Blocks: car, Blobs: []lexutil.LexLink{c}, PrevData: &c,
		Ops: []*comatproto.SyncSubscribeRepos_RepoOp{{Action: "create", Path: "app.bsky.feed.post/3lbqyd2lmzc2b", Cid: &c}}}},
		frame{op: 1, typ: "#commit", seq: 7, time: tm, repo: did})
	add("#sync", &events.XRPCStreamEvent{RepoSync: &comatproto.SyncSubscribeRepos_Sync{Seq: 1 << 40, Did: did, Time: tm,
		Rev: "3lbqyd2lmzc2b", Blocks: car}}, frame{op: 1, typ: "#sync", seq: 1 << 40, time: tm, repo: did})
	add("#identity", &events.XRPCStreamEvent{RepoIdentity: &comatproto.SyncSubscribeRepos_Identity{Seq: 300, Did: did, Time: tm,
		Handle: &handle}}, frame{op: 1, typ: "#identity", seq: 300, time: tm, repo: did})
	add("#account", &events.XRPCStreamEvent{RepoAccount: &comatproto.SyncSubscribeRepos_Account{Seq: 70000, Did: did, Time: tm,
		Status: &status}}, frame{op: 1, typ: "#account", seq: 70000, time: tm, repo: did})
	add("#info", &events.XRPCStreamEvent{RepoInfo: &comatproto.SyncSubscribeRepos_Info{Name: "OutdatedCursor", Message: &msg}},
		frame{op: 1, typ: "#info"})
	add("error", &events.XRPCStreamEvent{Error: &events.ErrorFrame{Error: "FutureCursor", Message: "cursor in the future"}},
		frame{op: -1})
	return cases
}

// The scanner reads what indigo's decoder reads of every kind of frame
// indigo encodes, and refuses each message cut short.
func TestParseFrameAgreesWithIndigo(t *testing.T) {
	for _, c := range indigoFrames(t, 1500) {
		var evt events.XRPCStreamEvent
		if err := evt.Deserialize(bytes.NewReader(c.raw)); err != nil {
			t.Fatalf("%s: indigo: %v", c.name, err)
		}
		f, err := parseFrame(c.raw)
		if err != nil || f != c.want {
			t.Errorf("%s: got %+v %v, want %+v", c.name, f, err, c.want)
		}
		if c.want.op != 1 {
			continue // an error frame's body is not read
		}
		for i := range c.raw {
			if _, err := parseFrame(c.raw[:i]); err == nil {
				t.Fatalf("%s truncated at %d: no error", c.name, i)
			}
		}
	}
}

// BenchmarkParseFrame compares the scanner with decoding the frame with
// indigo (events.XRPCStreamEvent.Deserialize), what a subscriber would
// otherwise do for every frame: a #commit with a 1.5 kB CAR slice, about
// one createRecord's.
func BenchmarkParseFrame(b *testing.B) {
	raw := indigoFrames(b, 1500)[0].raw
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := parseFrame(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("indigo", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var evt events.XRPCStreamEvent
			if err := evt.Deserialize(bytes.NewReader(raw)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
