package backup

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/eventlog/events"
)

// testSegment encodes n events of a random stream from seq first, with a
// tombstone every 7th.
func testSegment(t testing.TB, first eventlog.Seq, n int) ([]byte, [][]byte) {
	st := eventlogtest.NewStream(uint64(first), 4)
	b := newSegmentBuilder(first)
	var vals [][]byte
	for i := range n {
		seq := first + eventlog.Seq(i)
		if i%7 == 6 {
			b.add(seq, eventlog.TombstoneValue(), "", 0)
			vals = append(vals, eventlog.TombstoneValue())
			continue
		}
		ev := st.Next()
		ev.Time = "2026-01-02T03:04:05.678Z"
		v, err := eventlog.EncodeStored(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.add(seq, v, string(ev.DID), time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC).UnixMilli())
		vals = append(vals, v)
	}
	out, _ := b.encode()
	return out, vals
}

func TestSegmentRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		first eventlog.Seq
		n     int
	}{{1, 1}, {1, 6}, {100, 500}, {1 << 40, 50}} {
		t.Run(fmt.Sprint(tc.first, "+", tc.n), func(t *testing.T) {
			data, vals := testSegment(t, tc.first, tc.n)
			seg, err := DecodeSegment(data)
			if err != nil {
				t.Fatal(err)
			}
			h := seg.Header
			if h.First != tc.first || h.Last != tc.first+eventlog.Seq(tc.n-1) || len(seg.Values) != tc.n {
				t.Fatalf("header %+v, %d values", h, len(seg.Values))
			}
			for i := range vals {
				if !bytes.Equal(seg.Values[i], vals[i]) {
					t.Fatalf("value %d differs", i)
				}
			}
			if !slices.IsSorted(h.DIDs) || len(h.DIDs) == 0 {
				t.Fatalf("dids %v", h.DIDs)
			}
			hh, off, err := DecodeSegmentHeader(data[:len(data)/2+40])
			if err != nil && !errors.Is(err, ErrShortHeader) {
				t.Fatal(err)
			}
			if err == nil && (off <= 0 || hh.First != h.First) {
				t.Fatalf("header from a prefix: %+v %d", hh, off)
			}
		})
	}
}

// Every kind of damage is caught before a value is handed out.
func TestSegmentCorruption(t *testing.T) {
	data, _ := testSegment(t, 10, 40)
	_, off, err := DecodeSegmentHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(data)
		b[i] ^= 0x40
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"magic", flip(0), ErrCorrupt},
		{"header byte", flip(20), ErrCorrupt},
		{"header crc", flip(off - 1), ErrCorrupt},
		{"body first byte", flip(off), ErrCorrupt},
		{"body last byte", flip(len(data) - 1), ErrCorrupt},
		{"truncated body", data[:len(data)-1], ErrCorrupt},
		{"extra byte", append(bytes.Clone(data), 0), ErrCorrupt},
		{"truncated header", data[:off-3], ErrShortHeader},
		{"empty", nil, ErrShortHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeSegment(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSegmentKeyAndChain(t *testing.T) {
	gen := newGeneration(time.Now())
	if !ValidGeneration(gen) || ValidGeneration("x"+gen) {
		t.Fatalf("generation %q", gen)
	}
	k := segmentKey(gen, 5, 9, 2)
	r, ok := parseSegmentKey(gen, k)
	if !ok || r.First != 5 || r.Last != 9 || r.Version != 2 {
		t.Fatalf("%s -> %+v %v", k, r, ok)
	}
	for _, bad := range []string{segmentKey(gen, 9, 5, 0), segmentPrefix(gen) + "x.seg", segmentKey("other", 1, 2, 0)} {
		if _, ok := parseSegmentKey(gen, bad); ok {
			t.Errorf("parsed %q", bad)
		}
	}
	type seg struct {
		first, last eventlog.Seq
		ver         int
	}
	for _, tc := range []struct {
		name   string
		segs   []seg
		head   eventlog.Seq
		chosen []seg
		stale  int
	}{
		{"dense", []seg{{1, 3, 0}, {4, 4, 0}, {5, 9, 0}}, 9, []seg{{1, 3, 0}, {4, 4, 0}, {5, 9, 0}}, 0},
		{"hole", []seg{{1, 3, 0}, {7, 9, 0}, {10, 12, 0}}, 3, []seg{{1, 3, 0}}, 2},
		{"no first", []seg{{2, 3, 0}}, 0, nil, 1},
		{"rewritten", []seg{{1, 3, 0}, {1, 3, 1}, {4, 5, 0}}, 5, []seg{{1, 3, 1}, {4, 5, 0}}, 1},
		{"merged", []seg{{1, 2, 0}, {1, 5, 0}, {3, 5, 0}, {6, 6, 0}}, 6, []seg{{1, 5, 0}, {6, 6, 0}}, 2},
		{"empty", nil, 0, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []seg
			c := newChain(func(r segRef) error {
				got = append(got, seg{r.First, r.Last, r.Version})
				return nil
			})
			var keys []string
			for _, s := range tc.segs {
				keys = append(keys, segmentKey(gen, s.first, s.last, s.ver))
			}
			slices.Sort(keys)
			for _, k := range keys {
				r, _ := parseSegmentKey(gen, k)
				if err := c.add(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.done(); err != nil {
				t.Fatal(err)
			}
			if c.head() != tc.head || !slices.Equal(got, tc.chosen) || len(c.stale) != tc.stale {
				t.Fatalf("head %d chosen %v stale %d; want %d %v %d", c.head(), got, len(c.stale), tc.head, tc.chosen, tc.stale)
			}
		})
	}
}

func TestManifestAndKeys(t *testing.T) {
	gen := newGeneration(time.Now())
	m := &Manifest{Version: 1, Generation: gen, Head: 10, Reserved: 100, Blobs: BlobsInfo{Location: BlobsInBackup},
		Keys: &KeysInfo{Object: keysKey(gen), Method: "passphrase", Digest: "x"}, Purges: []Purge{{DID: "did:plc:a", Before: 5}}}
	b, err := EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeManifest(b)
	if err != nil || got.Head != 10 || got.Reserved != 100 || len(got.Purges) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []string{`{"v":2}`, `{"v":1,"generation":"x","blobs":{"location":"backup"}}`,
		`{"v":1,"generation":"` + gen + `","blobs":{"location":"moon"}}`, `{"v":1,"generation":"` + gen + `","blobs":{"location":"backup"},"extra":1}`, `[`} {
		if _, err := DecodeManifest([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}

	files := map[string][]byte{"seal.key": bytes.Repeat([]byte{7}, 32), "jwt.secret": []byte("jwt")}
	bundle, digest := encodeKeyBundle(files)
	r, id, err := PassphraseKeys("correct horse", 10)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealKeys(bundle, []age.Recipient{r})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, files["seal.key"]) || bytes.Contains(sealed, []byte("jwt")) {
		t.Fatal("sealed keys hold a key in clear")
	}
	back, err := openKeys(sealed, []age.Identity{id})
	if err != nil || !bytes.Equal(back["seal.key"], files["seal.key"]) || len(back) != 2 {
		t.Fatalf("%v %v", back, err)
	}
	_, wrong, _ := PassphraseKeys("wrong", 10)
	if _, err := openKeys(sealed, []age.Identity{wrong}); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, d2 := encodeKeyBundle(map[string][]byte{"seal.key": files["seal.key"]}); d2 == digest {
		t.Fatal("digest did not change with the files")
	}
	if _, err := DecodeKeyBundle([]byte(`{"v":1,"files":{"../x":"AA=="}}`)); err == nil {
		t.Fatal("path in a key name accepted")
	}
}

func FuzzSegment(f *testing.F) {
	data, _ := testSegment(f, 1, 20)
	f.Add(data)
	small, _ := testSegment(f, 3, 1)
	f.Add(small)
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, err := DecodeSegment(b)
		if err != nil {
			return
		}
		if len(seg.Values) != int(seg.Header.Last-seg.Header.First+1) {
			t.Fatalf("%d values for %d..%d", len(seg.Values), seg.Header.First, seg.Header.Last)
		}
		for _, v := range seg.Values {
			if len(v) == 0 {
				t.Fatal("empty value")
			}
		}
	})
}

func FuzzManifest(f *testing.F) {
	gen := newGeneration(time.Unix(0, 0))
	b, _ := EncodeManifest(&Manifest{Version: 1, Generation: gen, Head: 3, Blobs: BlobsInfo{Location: BlobsExternal, Bucket: "b"},
		Purges: []Purge{{DID: "did:plc:x", Before: 2}}})
	f.Add(b)
	f.Add([]byte(`{"v":1,"files":{"seal.key":"AAAA"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := DecodeManifest(b); err == nil {
			if _, err := EncodeManifest(m); err != nil {
				t.Fatalf("decoded manifest does not encode: %v", err)
			}
		}
		if files, err := DecodeKeyBundle(b); err == nil {
			if err := checkKeyFiles(files); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestBlobsOfEvent(t *testing.T) {
	did := eventlogtest.DID(1)
	const c = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"
	for _, tc := range []struct {
		name     string
		ev       *eventlog.Event
		up, down int
	}{
		{"uploaded", events.Must(did, &events.BlobUploaded{CID: c, Size: 3}), 1, 0},
		{"deleted", events.Must(did, &events.BlobDeleted{CID: c}), 0, 1},
		{"quarantine", events.Must(did, &events.BlobQuarantine{CID: c, On: true}), 0, 0},
		{"bad cid", events.Must(did, &events.BlobUploaded{CID: "nope"}), 0, 0},
		{"garbage", &eventlog.Event{Kind: eventlog.KindPrivate, DID: did, Private: &eventlog.Private{Type: events.TypeBlobUploaded, Data: []byte("{")}}, 0, 0},
		{"commit", eventlogtest.NewRepo(did).Commit(eventlogtest.NewClock(), nil, 1), 0, 0},
	} {
		up, down := BlobsOfEvent(tc.ev)
		if len(up) != tc.up || len(down) != tc.down {
			t.Errorf("%s: %v %v", tc.name, up, down)
		}
		for _, r := range append(up, down...) {
			if r.DID != did || r.CID.String() != c {
				t.Errorf("%s: %+v", tc.name, r)
			}
		}
	}
}
