package commit_test

import (
	"errors"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atdata"

	"github.com/pdslog/pdslog/api/pds/commit"
)

// Records arrive parsed by atdata (blobs, links and bytes as atdata
// values); EncodeRecord must accept those and refuse the unparsed shapes,
// which would encode as plain maps instead of CID links.
func TestEncodeRecordParsedData(t *testing.T) {
	const post = `{"text":"pic","createdAt":"2026-11-26T12:00:00.000Z",
		"embed":{"$type":"app.bsky.embed.images","images":[{"alt":"","image":{"$type":"blob","ref":{"$link":"bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},"mimeType":"image/png","size":1234}}]},
		"facets":[{"index":{"byteStart":0,"byteEnd":3},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://example.com"}]}],
		"raw":{"$bytes":"aGVsbG8"},"link":{"$link":"bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}}`
	rec, err := atdata.UnmarshalJSON([]byte(post))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := commit.EncodeRecord("app.bsky.feed.post", rec)
	if err != nil {
		t.Fatalf("parsed record with a blob, bytes and a link: %v", err)
	}
	back, err := atdata.UnmarshalCBOR(b)
	if err != nil {
		t.Fatal(err)
	}
	blobs := atdata.ExtractBlobs(back)
	if len(blobs) != 1 || blobs[0].Size != 1234 || blobs[0].MimeType != "image/png" {
		t.Fatalf("blob after round trip: %+v", blobs)
	}
	if _, ok := back["link"].(atdata.CIDLink); !ok {
		t.Fatalf("link after round trip: %T", back["link"])
	}

	bad := []map[string]any{
		{"image": map[string]any{"$type": "blob", "ref": map[string]any{"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}, "mimeType": "image/png", "size": 1}},
		{"link": map[string]any{"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}},
		{"raw": map[string]any{"$bytes": "aGVsbG8"}},
		{"n": 1.5},
		{"x": map[string]any{"$type": ""}},
		{"a\x00b": "nul in a key"},
	}
	for _, r := range bad {
		if _, _, err := commit.EncodeRecord("com.example.thing", r); !errors.Is(err, commit.ErrInvalidRecord) {
			t.Errorf("%v: err = %v, want ErrInvalidRecord", r, err)
		}
	}
}
