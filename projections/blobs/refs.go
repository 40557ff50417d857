package blobs

import (
	"bytes"
	"slices"

	"github.com/bluesky-social/indigo/atproto/atdata"
)

// Ref is a record's reference to a blob.
type Ref struct {
	CID      string
	MimeType string
	Size     int64 // -1 for a legacy blob reference
}

// RefsOf returns the distinct blob references in a record (atproto data as
// atdata parses it), sorted by CID.
func RefsOf(rec map[string]any) []Ref {
	var out []Ref
	seen := map[string]bool{}
	for _, b := range atdata.ExtractBlobs(rec) {
		c := b.Ref.String()
		if seen[c] || !b.Ref.IsDefined() {
			continue
		}
		seen[c] = true
		out = append(out, Ref{CID: c, MimeType: b.MimeType, Size: b.Size})
	}
	slices.SortFunc(out, func(a, b Ref) int {
		switch {
		case a.CID < b.CID:
			return -1
		case a.CID > b.CID:
			return 1
		}
		return 0
	})
	return out
}

// RefsOfCBOR returns the blob references in a DAG-CBOR record. A record
// that does not parse holds none (records are validated before commit).
func RefsOfCBOR(b []byte) []Ref {
	// Both forms of a blob reference have a "mimeType" key: a record
	// without those bytes holds none, and most records (posts, likes,
	// follows) are not worth decoding.
	if !bytes.Contains(b, []byte("mimeType")) {
		return nil
	}
	rec, err := atdata.UnmarshalCBOR(b)
	if err != nil {
		return nil
	}
	return RefsOf(rec)
}
