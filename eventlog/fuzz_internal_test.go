package eventlog

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecodeEvent feeds arbitrary stored values to the decoder: it must
// never panic, must classify every failure as ErrCorrupt or
// ErrUnknownFormat, and whatever it accepts must survive a re-encode:
// decode(encode(decode(x))) equals decode(x), and the encoding is stable.
func FuzzDecodeEvent(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		if filepath.Base(p) == "head_v1.golden" {
			continue
		}
		f.Add(readGolden(f, p))
	}
	for _, seed := range [][]byte{
		{}, {formatTombstone}, {formatV1}, {0x02}, {0xff},
		{formatV1, 0xa0}, // empty map: no payload
		{formatV1, 0xf6}, // null
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev Event
		if err := decodeValue(data, &ev); err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownFormat) {
				t.Fatalf("decode error is neither ErrCorrupt nor ErrUnknownFormat: %v", err)
			}
			return
		}
		if ev.Seq != 0 {
			t.Fatalf("decoder set seq %d", ev.Seq)
		}
		if data[0] == formatTombstone {
			if ev.Kind != KindTombstone || ev.DID != "" {
				t.Fatalf("tombstone decoded as %+v", ev)
			}
			return
		}
		enc, err := encodeValue(&ev)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v\n%+v", err, ev)
		}
		var again Event
		if err := decodeValue(enc, &again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%x", err, enc)
		}
		if diff := cmp.Diff(&ev, &again, cmpStored); diff != "" {
			t.Fatalf("round trip changed the event (-first +second):\n%s", diff)
		}
		enc2, err := encodeValue(&again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v\n%x\n%x", err, enc, enc2)
		}
	})
}
