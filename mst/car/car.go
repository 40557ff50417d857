package car

import (
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// Errors. Every error the package returns matches (errors.Is) one of these;
// truncation errors also match io.ErrUnexpectedEOF.
var (
	// ErrTruncated is returned when the input ends inside the header or a
	// section (an input that ends exactly between sections is a clean io.EOF).
	ErrTruncated = errors.New("car: unexpected end of input")
	// ErrInvalidVarint is returned for a length prefix that is not a minimal
	// unsigned varint or does not fit in 63 bits.
	ErrInvalidVarint = errors.New("car: invalid varint")
	// ErrHeaderTooLarge is returned when the header's length prefix exceeds
	// ReaderOptions.MaxHeaderSize.
	ErrHeaderTooLarge = errors.New("car: header too large")
	// ErrInvalidHeader is returned for a header that is not a DAG-CBOR map of
	// exactly {roots: [CID...], version: int}.
	ErrInvalidHeader = errors.New("car: invalid header")
	// ErrUnsupportedVersion is returned for a header whose version is not 1
	// (CARv2 included).
	ErrUnsupportedVersion = errors.New("car: unsupported version")
	// ErrInvalidSection is returned for a zero-length section.
	ErrInvalidSection = errors.New("car: invalid section")
	// ErrBlockTooLarge is returned when a section's length prefix announces
	// more than ReaderOptions.MaxBlockSize bytes of block data.
	ErrBlockTooLarge = errors.New("car: block too large")
	// ErrTooLarge is returned when reading on would take the input past
	// ReaderOptions.MaxTotalBytes.
	ErrTooLarge = errors.New("car: input too large")
	// ErrTooManyBlocks is returned when the input holds more than
	// ReaderOptions.MaxBlocks blocks.
	ErrTooManyBlocks = errors.New("car: too many blocks")
	// ErrInvalidCID is returned for bytes that do not parse as a CID, or a
	// section CID longer than MaxCIDSize. Writer returns it for cid.Undef.
	ErrInvalidCID = errors.New("car: invalid CID")
	// ErrUnsupportedCID is returned for a CID outside the atproto profile
	// (CIDv1, dag-cbor or raw, sha2-256) unless ReaderOptions.AllowAnyCID is
	// set, and, when verifying, for a CID whose hash function is unknown.
	ErrUnsupportedCID = errors.New("car: unsupported CID")
	// ErrHashMismatch is returned when a block's bytes do not hash to its CID.
	ErrHashMismatch = errors.New("car: block does not match its CID")
	// ErrRead wraps an error returned by the underlying io.Reader.
	ErrRead = errors.New("car: read error")
	// ErrWrite wraps an error returned by the underlying io.Writer; a Writer
	// that has returned it keeps returning it.
	ErrWrite = errors.New("car: write error")
)

const (
	// DefaultMaxHeaderSize is the default ReaderOptions.MaxHeaderSize. An
	// atproto header (one root) is 58 bytes.
	DefaultMaxHeaderSize = 64 << 10
	// DefaultMaxBlockSize is the default ReaderOptions.MaxBlockSize.
	DefaultMaxBlockSize = 2 << 20
	// MaxCIDSize bounds the CID of a section. A sha2-256 CIDv1 is 36 bytes;
	// the cap leaves room for 512-bit digests and long varints.
	MaxCIDSize = 128
	// BufferSize is the size of the Writer's and the Reader's buffer.
	BufferSize = 32 << 10
)

// Multicodec and multihash codes of the atproto CID profile.
const (
	codecDagCBOR = 0x71
	codecRaw     = 0x55
	mhSHA2_256   = 0x12
)

// Block is a CID and the bytes it names.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// isAtprotoCID reports whether the binary CID b is in the atproto profile:
// CIDv1, codec dag-cbor or raw, sha2-256 with a 32-byte digest. All of these
// codes are below 0x80, so each varint is one byte.
func isAtprotoCID[T string | []byte](b T) bool {
	return len(b) == 36 && b[0] == 1 && (b[1] == codecDagCBOR || b[1] == codecRaw) &&
		b[2] == mhSHA2_256 && b[3] == 32
}

// checkCID applies the CID policy: the atproto profile, or anything go-cid
// parses when allowAny is set.
func checkCID(c cid.Cid, allowAny bool) error {
	if allowAny || isAtprotoCID(c.KeyString()) {
		return nil
	}
	return fmt.Errorf("%w: %s (want CIDv1, dag-cbor or raw, sha2-256)", ErrUnsupportedCID, describeCID(c))
}

func describeCID(c cid.Cid) string {
	p := c.Prefix()
	return fmt.Sprintf("v%d codec 0x%x multihash 0x%x/%d", p.Version, p.Codec, p.MhType, p.MhLength)
}

// truncated is the error for input that ends inside a structure.
func truncated(what string) error {
	return fmt.Errorf("%w in %s: %w", ErrTruncated, what, io.ErrUnexpectedEOF)
}

// uvarintLen is the number of bytes of the varint encoding of x.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// appendUvarint appends the minimal unsigned varint encoding of x.
func appendUvarint(dst []byte, x uint64) []byte {
	for x >= 0x80 {
		dst = append(dst, byte(x)|0x80)
		x >>= 7
	}
	return append(dst, byte(x))
}

// readUvarint reads a minimal unsigned varint of at most 9 bytes (63 bits).
// It returns io.EOF only if the input ends before the first byte, and
// ErrTruncated if it ends inside the varint.
func readUvarint(r io.ByteReader, what string) (uint64, error) {
	var x uint64
	for i := 0; i < 9; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				if i == 0 {
					return 0, io.EOF
				}
				return 0, truncated(what + " length")
			}
			return 0, fmt.Errorf("%w: %w", ErrRead, err)
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: %s length is not minimally encoded", ErrInvalidVarint, what)
			}
			return x, nil
		}
	}
	return 0, fmt.Errorf("%w: %s length longer than 9 bytes", ErrInvalidVarint, what)
}
