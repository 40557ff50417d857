package commit

import (
	"fmt"
	"strings"

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
	if err := checkParsed(rec, 0); err != nil {
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

// maxDepth bounds record nesting (DAG-CBOR decoders in the network refuse
// deeper data).
const maxDepth = 32

// checkParsed checks that v is atproto data in the form atdata's
// UnmarshalJSON/UnmarshalCBOR produce: blobs, links and bytes as atdata
// values (not their JSON shapes, which would encode as plain maps), and
// only the data model's scalar types. atdata.Validate cannot be used: it
// expects the unparsed JSON shapes and refuses atdata.Blob.
func checkParsed(v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("data nested deeper than %d", maxDepth)
	}
	switch v := v.(type) {
	case nil, bool, string, int64, int, atdata.CIDLink, atdata.Bytes:
		return nil
	case atdata.Blob:
		if !v.Ref.IsDefined() {
			return fmt.Errorf("blob without a ref")
		}
		return nil
	case []any:
		for _, e := range v {
			if err := checkParsed(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		for _, k := range []string{"$link", "$bytes"} {
			if _, ok := v[k]; ok {
				return fmt.Errorf("unparsed %s object (records must be parsed with atdata)", k)
			}
		}
		if t, ok := v["$type"]; ok {
			if s, isStr := t.(string); !isStr || s == "" {
				return fmt.Errorf("$type must be a non-empty string")
			} else if s == "blob" {
				return fmt.Errorf("unparsed blob object (records must be parsed with atdata)")
			}
		}
		for k, e := range v {
			if strings.ContainsRune(k, 0) {
				return fmt.Errorf("map key %q contains a NUL character", k)
			}
			if err := checkParsed(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("unexpected type %T in record", v)
	}
}
