package mst

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Node wire format (repository spec v3), DAG-CBOR:
//
//	node  = {"e": [entry...], "l": link | null}
//	entry = {"k": bytes, "p": uint, "t": link | null, "v": link}
//
// Map keys appear in DAG-CBOR canonical order (shorter first, then
// bytewise), which for these one-letter keys is alphabetical. "l" is the
// subtree left of the first entry; each entry's "t" is the subtree right of
// it. "p" is the number of leading bytes the entry's key shares with the
// previous key of the same node (0 for the first entry) and "k" is the rest
// of the key. Links are CBOR tag 42 around a byte string holding 0x00 and
// the binary CID.
//
// Only this canonical form is accepted by decodeNode: definite lengths,
// minimal integer encodings, exactly these keys in this order, and "p"
// equal to the real common prefix length. So decoding then encoding gives
// back the same bytes, and a node can only have one CID.

// CBOR major types.
const (
	majUint  = 0
	majBytes = 2
	majText  = 3
	majArray = 4
	majMap   = 5
	majTag   = 6

	cborNull = 0xf6
	tagCID   = 42
)

// sha256DagCBORPrefix is the binary prefix of a CIDv1, dag-cbor, sha2-256
// (32-byte digest) CID: the CIDs of MST nodes.
const sha256DagCBORPrefix = "\x01\x71\x12\x20"

// encodedNode is a node in wire form, with keys expanded: links[i] is the
// subtree left of keys[i], links[len(keys)] the one right of the last key;
// cid.Undef stands for null.
type encodedNode struct {
	keys  []string
	vals  []cid.Cid
	links []cid.Cid
}

// appendHead appends a CBOR head (major type and argument) in its shortest
// form.
func appendHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= 0xff:
		return append(b, m|24, byte(arg))
	case arg <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(arg))
	case arg <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(arg))
	default:
		return binary.BigEndian.AppendUint64(append(b, m|27), arg)
	}
}

// appendLink appends c as a DAG-CBOR link, or null for cid.Undef.
func appendLink(b []byte, c cid.Cid) []byte {
	if !c.Defined() {
		return append(b, cborNull)
	}
	raw := c.KeyString()
	b = append(b, 0xd8, tagCID)
	b = appendHead(b, majBytes, uint64(len(raw)+1))
	b = append(b, 0)
	return append(b, raw...)
}

// linkSize is an upper bound of the size of appendLink's output.
func linkSize(c cid.Cid) int {
	return 2 + 9 + 1 + len(c.KeyString())
}

// encode returns the canonical DAG-CBOR bytes of e.
func (e *encodedNode) encode() []byte {
	size := 8 + linkSize(e.links[0])
	for i, k := range e.keys {
		size += 20 + len(k) + linkSize(e.vals[i]) + linkSize(e.links[i+1])
	}
	b := make([]byte, 0, size)
	b = appendHead(b, majMap, 2)
	b = append(b, majText<<5|1, 'e')
	b = appendHead(b, majArray, uint64(len(e.keys)))
	prev := ""
	for i, k := range e.keys {
		p := commonPrefixLen(prev, k)
		b = appendHead(b, majMap, 4)
		b = append(b, majText<<5|1, 'k')
		b = appendHead(b, majBytes, uint64(len(k)-p))
		b = append(b, k[p:]...)
		b = append(b, majText<<5|1, 'p')
		b = appendHead(b, majUint, uint64(p))
		b = append(b, majText<<5|1, 't')
		b = appendLink(b, e.links[i+1])
		b = append(b, majText<<5|1, 'v')
		b = appendLink(b, e.vals[i])
		prev = k
	}
	b = append(b, majText<<5|1, 'l')
	return appendLink(b, e.links[0])
}

// cidForNode returns the CID of node bytes: CIDv1, dag-cbor, sha2-256.
func cidForNode(data []byte) cid.Cid {
	sum := sha256.Sum256(data)
	var buf [36]byte
	copy(buf[:], sha256DagCBORPrefix)
	copy(buf[4:], sum[:])
	c, err := cid.Cast(buf[:])
	if err != nil {
		panic("mst: building a CID: " + err.Error()) // cannot happen: the bytes are a valid CID
	}
	return c
}

// checkCID reports whether data hashes to c.
func checkCID(c cid.Cid, data []byte) error {
	raw := c.KeyString()
	if len(raw) == 36 && raw[:4] == sha256DagCBORPrefix {
		sum := sha256.Sum256(data)
		if string(sum[:]) == raw[4:] {
			return nil
		}
	} else if got, err := c.Prefix().Sum(data); err == nil && got.Equals(c) {
		return nil
	}
	return fmt.Errorf("%w: block %s does not hash to its CID", ErrInvalidNode, c)
}

// decoder reads canonical DAG-CBOR from b.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) fail(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrInvalidNode, d.off, fmt.Sprintf(format, args...))
}

// head reads a CBOR head, requiring a definite, minimally encoded argument.
func (d *decoder) head() (major byte, arg uint64, err error) {
	if d.off >= len(d.b) {
		return 0, 0, d.fail("unexpected end of data")
	}
	ib := d.b[d.off]
	d.off++
	major, ai := ib>>5, ib&0x1f
	var n int
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai == 24:
		n = 1
	case ai == 25:
		n = 2
	case ai == 26:
		n = 4
	case ai == 27:
		n = 8
	default:
		return 0, 0, d.fail("unsupported CBOR head 0x%02x", ib)
	}
	if len(d.b)-d.off < n {
		return 0, 0, d.fail("unexpected end of data")
	}
	var min uint64
	switch n {
	case 1:
		arg, min = uint64(d.b[d.off]), 24
	case 2:
		arg, min = uint64(binary.BigEndian.Uint16(d.b[d.off:])), 1<<8
	case 4:
		arg, min = uint64(binary.BigEndian.Uint32(d.b[d.off:])), 1<<16
	case 8:
		arg, min = binary.BigEndian.Uint64(d.b[d.off:]), 1<<32
	}
	d.off += n
	if arg < min {
		return 0, 0, d.fail("integer not minimally encoded")
	}
	return major, arg, nil
}

// expect reads a head and checks its major type and, if want >= 0, its
// argument.
func (d *decoder) expect(what string, major byte, want int64) (uint64, error) {
	m, arg, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != major || (want >= 0 && arg != uint64(want)) {
		return 0, d.fail("bad %s", what)
	}
	return arg, nil
}

// bytes reads a byte string and returns it without copying.
func (d *decoder) bytes(what string) ([]byte, error) {
	n, err := d.expect(what, majBytes, -1)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, d.fail("%s runs past the end of data", what)
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s, nil
}

// mapKey reads a one-letter text string and checks it.
func (d *decoder) mapKey(k byte) error {
	if len(d.b)-d.off < 2 || d.b[d.off] != majText<<5|1 || d.b[d.off+1] != k {
		return d.fail("want map key %q", k)
	}
	d.off += 2
	return nil
}

// link reads a CID link, or null (cid.Undef) if nullable.
func (d *decoder) link(what string, nullable bool) (cid.Cid, error) {
	if nullable && d.off < len(d.b) && d.b[d.off] == cborNull {
		d.off++
		return cid.Undef, nil
	}
	if _, err := d.expect(what+" tag", majTag, tagCID); err != nil {
		return cid.Undef, err
	}
	raw, err := d.bytes(what)
	if err != nil {
		return cid.Undef, err
	}
	if len(raw) < 2 || raw[0] != 0 {
		return cid.Undef, d.fail("%s: link without the 0x00 multibase prefix", what)
	}
	c, err := cid.Cast(raw[1:])
	if err != nil {
		return cid.Undef, d.fail("%s: %v", what, err)
	}
	return c, nil
}

// decodeNode parses node bytes. It checks the encoding and that keys are
// non-empty and strictly increasing; it does not check key heights, which
// depend on where the node is in the tree.
func decodeNode(data []byte) (*encodedNode, error) {
	d := &decoder{b: data}
	if _, err := d.expect("node map", majMap, 2); err != nil {
		return nil, err
	}
	if err := d.mapKey('e'); err != nil {
		return nil, err
	}
	n, err := d.expect("entry array", majArray, -1)
	if err != nil {
		return nil, err
	}
	// An entry takes at least 20 bytes; this bounds the allocation.
	if n > uint64(len(data)-d.off)/20 {
		return nil, d.fail("entry count %d too large for the data", n)
	}
	e := &encodedNode{
		keys:  make([]string, n),
		vals:  make([]cid.Cid, n),
		links: make([]cid.Cid, n+1),
	}
	prev := ""
	for i := range e.keys {
		if _, err := d.expect("entry map", majMap, 4); err != nil {
			return nil, err
		}
		if err := d.mapKey('k'); err != nil {
			return nil, err
		}
		suffix, err := d.bytes("key suffix")
		if err != nil {
			return nil, err
		}
		if err := d.mapKey('p'); err != nil {
			return nil, err
		}
		p, err := d.expect("prefix length", majUint, -1)
		if err != nil {
			return nil, err
		}
		if p > uint64(len(prev)) {
			return nil, d.fail("prefix length %d longer than the previous key", p)
		}
		key := prev[:p] + string(suffix)
		switch {
		case key == "":
			return nil, d.fail("empty key")
		case i > 0 && key <= prev:
			return nil, d.fail("keys not in increasing order")
		case int(p) != commonPrefixLen(prev, key):
			return nil, d.fail("prefix length %d is not the common prefix length", p)
		}
		if err := d.mapKey('t'); err != nil {
			return nil, err
		}
		if e.links[i+1], err = d.link("subtree", true); err != nil {
			return nil, err
		}
		if err := d.mapKey('v'); err != nil {
			return nil, err
		}
		if e.vals[i], err = d.link("value", false); err != nil {
			return nil, err
		}
		e.keys[i] = key
		prev = key
	}
	if err := d.mapKey('l'); err != nil {
		return nil, err
	}
	if e.links[0], err = d.link("left subtree", true); err != nil {
		return nil, err
	}
	if d.off != len(data) {
		return nil, d.fail("trailing data")
	}
	return e, nil
}
