package commit_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/api/pds/commit"
)

// FuzzEncodeRecord: a record arriving as JSON (parsed by atdata, as the
// write handlers do) is either refused by EncodeRecord with one of its
// sentinels or encoded to DAG-CBOR that decodes back, re-encodes to the
// same bytes, carries the collection's $type and hashes to the CID
// returned; never a panic.
func FuzzEncodeRecord(f *testing.F) {
	for _, s := range []string{
		`{"text":"hello","createdAt":"2024-01-01T00:00:00Z"}`,
		`{"$type":"app.bsky.feed.post","text":"x","langs":["en"]}`,
		`{"$type":"other.type"}`,
		`{"$type":1}`,
		`{"$type":null}`,
		`{"img":{"$type":"blob","ref":{"$link":"bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},"mimeType":"image/png","size":10}}`,
		`{"l":{"$link":"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},"b":{"$bytes":"aGVsbG8"}}`,
		`{"f":1.5}`, `{"n":-9007199254740993}`, `{"a":[[[[[[[[[[[[]]]]]]]]]]]]}`, `{"":{"\u0000":true}}`,
		`[]`, `null`, `{}`, `{"$link":"x"}`, `{"$bytes":"!!"}`,
	} {
		f.Add("app.bsky.feed.post", []byte(s))
	}
	f.Add("com.example.thing", []byte(`{"x":"y"}`))
	f.Fuzz(func(t *testing.T, collection string, body []byte) {
		nsid, err := syntax.ParseNSID(collection)
		if err != nil {
			return
		}
		rec, err := atdata.UnmarshalJSON(body)
		if err != nil {
			return
		}
		b, c, err := commit.EncodeRecord(nsid, rec)
		if err != nil {
			if !errors.Is(err, commit.ErrInvalidRecord) && !errors.Is(err, commit.ErrRecordTooLarge) {
				t.Fatalf("refusal without a sentinel: %v", err)
			}
			return
		}
		want, err := cid.V1Builder{Codec: cid.DagCBOR, MhType: multihash.SHA2_256}.Sum(b)
		if err != nil || !want.Equals(c) {
			t.Fatalf("CID %s is not the hash of the bytes (%s, %v)", c, want, err)
		}
		back, err := atdata.UnmarshalCBOR(b)
		if err != nil {
			t.Fatalf("encoded record does not decode: %v\n%x", err, b)
		}
		if back["$type"] != nsid.String() {
			t.Fatalf("$type %v, collection %s", back["$type"], nsid)
		}
		again, err := atdata.MarshalCBOR(back)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("DAG-CBOR does not round-trip (%v):\n%x\n%x", err, b, again)
		}
	})
}
