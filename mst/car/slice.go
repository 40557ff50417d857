package car

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// errBadCAR is returned by FindBlock for a slice that is not a CAR v1.
var errBadCAR = errors.New("car: truncated or malformed CAR slice")

// FindBlock returns the data of block c in car, the CAR v1 slice of a
// #commit or #sync event, or ok false when the slice has no such block. It
// neither copies nor verifies (the blocks projection verifies every
// block's CID): the projections that want one record of a commit use it
// instead of decoding the whole slice. data aliases car.
func FindBlock(car []byte, c cid.Cid) (data []byte, ok bool, err error) {
	want := c.KeyString() // a CID's bytes; a section starts with its block's
	hl, n := binary.Uvarint(car)
	if n <= 0 || hl > uint64(len(car)-n) {
		return nil, false, errBadCAR
	}
	for off := n + int(hl); off < len(car); {
		l, n := binary.Uvarint(car[off:])
		if n <= 0 || l > uint64(len(car)-off-n) {
			return nil, false, errBadCAR
		}
		sec := car[off+n : off+n+int(l)]
		if len(sec) >= len(want) && string(sec[:len(want)]) == want {
			return sec[len(want):], true, nil
		}
		off += n + int(l)
	}
	return nil, false, nil
}

// EachBlock calls fn with the CID bytes and data of every block of car, a
// CAR v1 slice of a #commit or #sync event, in order, after checking that
// the CID is in the atproto profile (CIDv1, dag-cbor or raw, sha2-256) and
// that the data hashes to it: what car.Unmarshal checks of the sections,
// without a copy or an allocation per block. The slices alias car.
func EachBlock(car []byte, fn func(c, data []byte) error) error {
	hl, n := binary.Uvarint(car)
	if n <= 0 || hl > uint64(len(car)-n) {
		return errBadCAR
	}
	for off := n + int(hl); off < len(car); {
		l, n := binary.Uvarint(car[off:])
		if n <= 0 || l > uint64(len(car)-off-n) {
			return errBadCAR
		}
		sec := car[off+n : off+n+int(l)]
		off += n + int(l)
		if len(sec) < atprotoCIDLen || sec[0] != 1 || (sec[1] != 0x71 && sec[1] != 0x55) || sec[2] != 0x12 || sec[3] != 32 {
			return fmt.Errorf("%w: block CID %x is not CIDv1 dag-cbor or raw sha2-256", errBadCAR, sec[:min(len(sec), atprotoCIDLen)])
		}
		c, data := sec[:atprotoCIDLen], sec[atprotoCIDLen:]
		if sha256.Sum256(data) != [32]byte(c[4:]) {
			return fmt.Errorf("%w: block %x does not hash to its CID", errBadCAR, c)
		}
		if err := fn(c, data); err != nil {
			return err
		}
	}
	return nil
}

// atprotoCIDLen is the length of a CIDv1 sha2-256 in bytes.
const atprotoCIDLen = 36
