package commit

import (
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// MaxRecordBytes is the largest DAG-CBOR record accepted.
const MaxRecordBytes = 1_000_000

// EncodeRecord checks a record (atproto data, as parsed by atdata) for the
// collection it is written to and encodes it as DAG-CBOR: a missing $type is
// filled in from the collection, a different one is refused. It returns the
// bytes and their CID.
func EncodeRecord(collection syntax.NSID, rec map[string]any) ([]byte, cid.Cid, error) {
	if rec == nil {
		return nil, cid.Undef, fmt.Errorf("%w: missing record", ErrInvalidRecord)
	}
	switch t := rec["$type"].(type) {
	case nil:
		if _, present := rec["$type"]; present {
			return nil, cid.Undef, fmt.Errorf("%w: $type must be a string", ErrInvalidRecord)
		}
		cp := make(map[string]any, len(rec)+1)
		for k, v := range rec {
			cp[k] = v
		}
		cp["$type"] = collection.String()
		rec = cp
	case string:
		if t != collection.String() {
			return nil, cid.Undef, fmt.Errorf("%w: record $type %q does not match collection %q", ErrInvalidRecord, t, collection)
		}
	default:
		return nil, cid.Undef, fmt.Errorf("%w: $type must be a string", ErrInvalidRecord)
	}
	if err := atdata.Validate(rec); err != nil {
		return nil, cid.Undef, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	b, err := atdata.MarshalCBOR(rec)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	if len(b) > MaxRecordBytes {
		return nil, cid.Undef, fmt.Errorf("%w: %d bytes of DAG-CBOR, limit %d", ErrRecordTooLarge, len(b), MaxRecordBytes)
	}
	c, err := cborCID(b)
	return b, c, err
}

// cborCID is the CIDv1 (dag-cbor, sha2-256) of b.
func cborCID(b []byte) (cid.Cid, error) {
	return cid.V1Builder{Codec: cid.DagCBOR, MhType: multihash.SHA2_256}.Sum(b)
}
