package eventlog

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
)

// Golden files pin storage format 1 byte for byte: a log written today must
// decode the same way forever, so any change to these bytes is a new format,
// never an edit of this one. Run with -update only when adding a case.

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current encoder")

// cmpStored compares decoded events: CIDs by value, byte slices by content
// (nil equals empty), an empty op list equals a nil one.
var cmpStored = cmp.Options{
	cmp.Comparer(func(a, b cid.Cid) bool { return a.Equals(b) }),
	cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) }),
	cmp.FilterValues(func(a, b []Op) bool { return len(a) == 0 && len(b) == 0 },
		cmp.Comparer(func(a, b []Op) bool { return true })),
}

// goldenEvents are the fixed events pinned by testdata/format_v1_<name>.golden.
func goldenEvents() map[string]*Event {
	did := syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	at := syntax.Datetime("2024-11-05T17:04:31.123Z")
	post := "app.bsky.feed.post/3l7ry4x5rzk2c"
	like := "app.bsky.feed.like/3l7ry4x5s3c2c"
	follow := "app.bsky.graph.follow/3l7ry4x5s7s2c"
	return map[string]*Event{
		"commit": {Kind: KindCommit, DID: did, Time: at, Commit: &Commit{
			Rev: "3l7ry4x5t2k2c", Since: "3l7ry4x5rzk2c",
			Commit: proofCID("commit/2"), Data: proofCID("data/2"), PrevData: proofCID("data/1"),
			Blocks: []byte("\x3a\xa2eroots\x81\xd8\x2a\x58\x25\x00fake car slice"),
			Ops: []Op{
				{Action: ActionCreate, Path: post, CID: proofCID("record/post")},
				{Action: ActionUpdate, Path: "app.bsky.actor.profile/self", CID: proofCID("record/profile/2"), Prev: proofCID("record/profile/1")},
				{Action: ActionDelete, Path: like, Prev: proofCID("record/like")},
			},
		}},
		"commit_first": {Kind: KindCommit, DID: did, Time: at, Commit: &Commit{
			Rev: "3l7ry4x5rzk2c", Commit: proofCID("commit/1"), Data: proofCID("data/1"),
			Blocks: []byte{}, Ops: []Op{{Action: ActionCreate, Path: follow, CID: proofCID("record/follow")}},
		}},
		"sync": {Kind: KindSync, DID: did, Time: at, Sync: &Sync{
			Rev: "3l7ry4x5u4c2c", Commit: proofCID("commit/3"), Data: proofCID("data/3"), Blocks: []byte("car with the signed commit"),
		}},
		"identity_handle":     {Kind: KindIdentity, DID: did, Time: at, Identity: &Identity{Handle: "alice.example.com"}},
		"identity_no_handle":  {Kind: KindIdentity, DID: did, Time: at, Identity: &Identity{}},
		"account_active":      {Kind: KindAccount, DID: did, Time: at, Account: &Account{Active: true}},
		"account_deactivated": {Kind: KindAccount, DID: did, Time: at, Account: &Account{Active: false, Status: "deactivated"}},
		"private": {Kind: KindPrivate, DID: did, Time: at, Private: &Private{
			Type: "blob.meta", Data: []byte(`{"cid":"bafkrei","mime":"image/png","size":1234}`)}},
		// A secret private payload is stored sealed; the encoder sees only
		// opaque bytes (nonce || ciphertext || tag) and the secret flag.
		"private_sealed": {Kind: KindPrivate, DID: did, Time: at, Private: &Private{
			Type: "account.password", Secret: true, Data: bytes.Repeat([]byte{0x5a}, 12+16+9)}},
	}
}

func goldenPath(name string) string {
	return filepath.Join("testdata", "format_v1_"+name+".golden")
}

// readGolden reads a golden file: hex, whitespace ignored.
func readGolden(t testing.TB, path string) []byte {
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

func TestGoldenFormatV1(t *testing.T) {
	for name, ev := range goldenEvents() {
		t.Run(name, func(t *testing.T) {
			path := goldenPath(name)
			got, err := encodeValue(ev)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				writeGolden(t, path, got)
			}
			want := readGolden(t, path)
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding of %s changed; format 1 is frozen.\n got %x\nwant %x", name, got, want)
			}
			if want[0] != formatV1 {
				t.Fatalf("format byte %#x, want %#x", want[0], formatV1)
			}
			var dec Event
			if err := decodeValue(want, &dec); err != nil {
				t.Fatalf("decode golden: %v", err)
			}
			if diff := cmp.Diff(ev, &dec, cmpStored); diff != "" {
				t.Fatalf("golden decodes to another event (-want +got):\n%s", diff)
			}
			checkCanonicalDAGCBOR(t, want[1:])
		})
	}
}

// The body after the format byte is canonical DAG-CBOR in the atproto data
// model: indigo's generic decoder accepts it and re-encodes it to the very
// same bytes (sorted keys, minimal lengths, tag 42 CIDs, no floats).
func checkCanonicalDAGCBOR(t *testing.T, body []byte) {
	t.Helper()
	m, err := atdata.UnmarshalCBOR(body)
	if err != nil {
		t.Fatalf("not atproto DAG-CBOR: %v", err)
	}
	again, err := atdata.MarshalCBOR(m)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if !bytes.Equal(again, body) {
		t.Fatalf("not canonical DAG-CBOR:\n ours  %x\n canon %x", body, again)
	}
}

// Format 0 is the tombstone Purge writes: a single zero byte.
func TestGoldenTombstone(t *testing.T) {
	path := filepath.Join("testdata", "format_tombstone.golden")
	if *update {
		writeGolden(t, path, []byte{formatTombstone})
	}
	want := readGolden(t, path)
	if !bytes.Equal(want, []byte{0x00}) {
		t.Fatalf("tombstone golden is %x", want)
	}
	var ev Event
	if err := decodeValue(want, &ev); err != nil || ev.Kind != KindTombstone || ev.DID != "" {
		t.Fatalf("tombstone decodes to %+v, %v", ev, err)
	}
}

// The repo head stored under 'h' keys is on disk too: pin it the same way.
func TestGoldenHeadV1(t *testing.T) {
	path := filepath.Join("testdata", "head_v1.golden")
	h := RepoHead{Rev: "3l7ry4x5t2k2c", Commit: proofCID("commit/2"), Data: proofCID("data/2"), Seq: 1<<40 + 7}
	got, err := encodeHead(h)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		writeGolden(t, path, got)
	}
	want := readGolden(t, path)
	if !bytes.Equal(got, want) {
		t.Fatalf("head encoding changed:\n got %x\nwant %x", got, want)
	}
	dec, err := decodeHead(want)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, dec, cmpStored); diff != "" {
		t.Fatalf("head golden decodes to (-want +got):\n%s", diff)
	}
	checkCanonicalDAGCBOR(t, want)
}

// Every golden file on disk belongs to a case (none is left behind after a
// rename), and the names cover every appendable kind.
func TestGoldenFilesComplete(t *testing.T) {
	cases := goldenEvents()
	files, err := filepath.Glob(filepath.Join("testdata", "format_v1_*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "format_v1_"), ".golden")
		if cases[name] == nil {
			t.Errorf("%s has no case in goldenEvents", f)
		}
	}
	if len(files) != len(cases) {
		t.Errorf("%d golden files for %d cases (run with -update)", len(files), len(cases))
	}
	kinds := map[Kind]bool{}
	for _, ev := range cases {
		kinds[ev.Kind] = true
	}
	for _, k := range []Kind{KindCommit, KindSync, KindIdentity, KindAccount, KindPrivate} {
		if !kinds[k] {
			t.Errorf("no golden case for kind %s", k)
		}
	}
}
