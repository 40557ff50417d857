package car

import (
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"
)

// CBOR major types used by the header.
const (
	majorUint   = 0
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	tagCID      = 42
	headerRoots = "roots"
	headerVers  = "version"
)

// appendHead appends a CBOR head (major type and argument), minimally encoded.
func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= 0xff:
		return append(dst, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, m|27), n)
	}
}

// appendHeaderBody appends the DAG-CBOR encoding of {roots, version: 1}, keys
// in DAG-CBOR canonical order (shorter first), CIDs as tag 42 byte strings
// with the 0x00 multibase prefix.
func appendHeaderBody(dst []byte, roots []cid.Cid) []byte {
	dst = appendHead(dst, majorMap, 2)
	dst = appendHead(dst, majorText, uint64(len(headerRoots)))
	dst = append(dst, headerRoots...)
	dst = appendHead(dst, majorArray, uint64(len(roots)))
	for _, c := range roots {
		dst = appendHead(dst, majorTag, tagCID)
		dst = appendHead(dst, majorBytes, uint64(c.ByteLen()+1))
		dst = append(dst, 0)
		dst = append(dst, c.KeyString()...)
	}
	dst = appendHead(dst, majorText, uint64(len(headerVers)))
	dst = append(dst, headerVers...)
	return appendHead(dst, majorUint, 1)
}

// appendHeader appends the length-prefixed header.
func appendHeader(dst []byte, roots []cid.Cid) []byte {
	body := appendHeaderBody(nil, roots)
	dst = appendUvarint(dst, uint64(len(body)))
	return append(dst, body...)
}

// headerSize is len(appendHeader(nil, roots)).
func headerSize(roots []cid.Cid) int {
	n := len(appendHeaderBody(nil, roots))
	return uvarintLen(uint64(n)) + n
}

func checkRoots(roots []cid.Cid) error {
	for i, c := range roots {
		if !c.Defined() {
			return fmt.Errorf("%w: root %d is undefined", ErrInvalidCID, i)
		}
	}
	return nil
}

// cborDecoder reads DAG-CBOR items from a bounded buffer, strictly: definite
// lengths and minimal heads only.
type cborDecoder struct {
	b   []byte
	pos int
}

func (d *cborDecoder) remaining() int { return len(d.b) - d.pos }

func (d *cborDecoder) head() (major byte, arg uint64, err error) {
	if d.remaining() < 1 {
		return 0, 0, fmt.Errorf("%w: unexpected end of CBOR", ErrInvalidHeader)
	}
	ib := d.b[d.pos]
	d.pos++
	major, ai := ib>>5, ib&0x1f
	var size int
	var min uint64
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai == 24:
		size, min = 1, 24
	case ai == 25:
		size, min = 2, 1<<8
	case ai == 26:
		size, min = 4, 1<<16
	case ai == 27:
		size, min = 8, 1<<32
	default:
		return 0, 0, fmt.Errorf("%w: indefinite-length or reserved CBOR item (0x%02x)", ErrInvalidHeader, ib)
	}
	if d.remaining() < size {
		return 0, 0, fmt.Errorf("%w: unexpected end of CBOR", ErrInvalidHeader)
	}
	for _, c := range d.b[d.pos : d.pos+size] {
		arg = arg<<8 | uint64(c)
	}
	d.pos += size
	if arg < min {
		return 0, 0, fmt.Errorf("%w: CBOR integer not minimally encoded", ErrInvalidHeader)
	}
	return major, arg, nil
}

// expect reads a head of the given major type.
func (d *cborDecoder) expect(want byte, what string) (uint64, error) {
	major, arg, err := d.head()
	if err != nil {
		return 0, err
	}
	if major != want {
		return 0, fmt.Errorf("%w: %s has CBOR major type %d, want %d", ErrInvalidHeader, what, major, want)
	}
	return arg, nil
}

// bytes reads the payload of a byte or text string of length n.
func (d *cborDecoder) bytes(n uint64) ([]byte, error) {
	if n > uint64(d.remaining()) {
		return nil, fmt.Errorf("%w: unexpected end of CBOR", ErrInvalidHeader)
	}
	b := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

// decodeHeader decodes a header body: exactly the keys "roots" and
// "version" (in either order), version 1, roots an array of CIDs (possibly
// empty) that pass the CID policy.
func decodeHeader(b []byte, allowAnyCID bool) ([]cid.Cid, error) {
	d := &cborDecoder{b: b}
	n, err := d.expect(majorMap, "header")
	if err != nil {
		return nil, err
	}
	if n > 2 {
		return nil, fmt.Errorf("%w: header map has %d keys, want roots and version", ErrInvalidHeader, n)
	}
	var (
		roots            []cid.Cid
		version          uint64
		haveRoots, haveV bool
	)
	for range n {
		kl, err := d.expect(majorText, "header key")
		if err != nil {
			return nil, err
		}
		key, err := d.bytes(kl)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case headerVers:
			if haveV {
				return nil, fmt.Errorf("%w: duplicate key version", ErrInvalidHeader)
			}
			haveV = true
			if version, err = d.expect(majorUint, "version"); err != nil {
				return nil, err
			}
		case headerRoots:
			if haveRoots {
				return nil, fmt.Errorf("%w: duplicate key roots", ErrInvalidHeader)
			}
			haveRoots = true
			if roots, err = d.roots(allowAnyCID); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: unknown header key %q", ErrInvalidHeader, key)
		}
	}
	if d.remaining() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after header map", ErrInvalidHeader, d.remaining())
	}
	if !haveV {
		return nil, fmt.Errorf("%w: missing version", ErrInvalidHeader)
	}
	if version != 1 {
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, version)
	}
	if !haveRoots {
		return nil, fmt.Errorf("%w: missing roots", ErrInvalidHeader)
	}
	return roots, nil
}

// minRootSize is the smallest encoding of a root: tag (2), byte string head
// (1), 0x00 prefix (1) and a CID of at least 2 bytes. It bounds the capacity
// reserved for an untrusted array length.
const minRootSize = 6

func (d *cborDecoder) roots(allowAnyCID bool) ([]cid.Cid, error) {
	n, err := d.expect(majorArray, "roots")
	if err != nil {
		return nil, err
	}
	if n > uint64(d.remaining()/minRootSize) {
		return nil, fmt.Errorf("%w: roots array of %d entries in %d bytes", ErrInvalidHeader, n, d.remaining())
	}
	roots := make([]cid.Cid, 0, n)
	for i := range n {
		tag, err := d.expect(majorTag, "root")
		if err != nil {
			return nil, err
		}
		if tag != tagCID {
			return nil, fmt.Errorf("%w: root %d has CBOR tag %d, want 42", ErrInvalidHeader, i, tag)
		}
		l, err := d.expect(majorBytes, "root")
		if err != nil {
			return nil, err
		}
		raw, err := d.bytes(l)
		if err != nil {
			return nil, err
		}
		if len(raw) < 1 || raw[0] != 0 {
			return nil, fmt.Errorf("%w: root %d: %w: missing 0x00 multibase prefix", ErrInvalidHeader, i, ErrInvalidCID)
		}
		c, err := cid.Cast(raw[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: root %d: %w: %v", ErrInvalidHeader, i, ErrInvalidCID, err)
		}
		if err := checkCID(c, allowAnyCID); err != nil {
			return nil, fmt.Errorf("%w: root %d: %w", ErrInvalidHeader, i, err)
		}
		roots = append(roots, c)
	}
	return roots, nil
}
