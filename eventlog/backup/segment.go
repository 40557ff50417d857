package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/pdslog/pdslog/eventlog"
)

// Segment object format (version 1):
//
//	"PDSLSEG1"                      8 bytes
//	header length                   4 bytes, big-endian
//	header                          JSON (SegmentHeader)
//	CRC-32C of the header           4 bytes, big-endian
//	body                            zstd of the records
//
// The records are the stored values of seqs First..Last, each as a uvarint
// length and the value (eventlog's format byte and body, secrets sealed;
// a tombstone is one zero byte). Seqs are implied: a segment is dense.
const segMagic = "PDSLSEG1"

// Limits a decoder enforces.
const (
	// MaxSegmentRaw is the largest uncompressed body a segment may have.
	MaxSegmentRaw = 512 << 20
	// MaxSegmentEvents is the most events one segment may hold.
	MaxSegmentEvents = 1 << 22
	maxHeaderLen     = 16 << 20
)

// SegmentHeader describes a segment; it is readable without the body (a
// ranged read) so compaction can tell which accounts a segment holds.
type SegmentHeader struct {
	Version int          `json:"v"`
	First   eventlog.Seq `json:"first"`
	Last    eventlog.Seq `json:"last"`
	// MinTime and MaxTime bound the append times of its events (unix
	// milliseconds; 0 when it holds only tombstones).
	MinTime int64 `json:"t0"`
	MaxTime int64 `json:"t1"`
	// RawLen and BodyLen are the body's sizes before and after compression;
	// BodySHA256 is the hex SHA-256 of the compressed body.
	RawLen     int64  `json:"raw"`
	BodyLen    int64  `json:"len"`
	BodySHA256 string `json:"sha256"`
	// DIDs are the accounts of its events (not tombstones), sorted.
	DIDs []string `json:"dids"`
}

// Segment is a decoded segment: its header and one stored value per seq.
type Segment struct {
	Header SegmentHeader
	Values [][]byte // Values[i] is seq Header.First+i
}

var (
	zenc     *zstd.Encoder
	zstdOnce sync.Once
	zdecs    = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxSegmentRaw))
		if err != nil {
			panic(err)
		}
		return d
	}}
)

func encoder() *zstd.Encoder {
	zstdOnce.Do(func() {
		var err error
		if zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1)); err != nil {
			panic(err)
		}
	})
	return zenc
}

// decompress inflates body, refusing more than limit bytes out.
func decompress(body []byte, limit int64) ([]byte, error) {
	d := zdecs.Get().(*zstd.Decoder)
	defer zdecs.Put(d)
	if err := d.Reset(bytes.NewReader(body)); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(int(min(limit, 4*int64(len(body))+4096)))
	if _, err := out.ReadFrom(io.LimitReader(d, limit+1)); err != nil {
		return nil, err
	}
	if int64(out.Len()) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return out.Bytes(), nil
}

// segmentBuilder accumulates the records of one segment.
type segmentBuilder struct {
	first, last eventlog.Seq
	raw         bytes.Buffer
	dids        map[string]struct{}
	minT, maxT  int64
}

func newSegmentBuilder(first eventlog.Seq) *segmentBuilder {
	return &segmentBuilder{first: first, last: first - 1, dids: map[string]struct{}{}}
}

func (b *segmentBuilder) empty() bool { return b.last < b.first }
func (b *segmentBuilder) events() int { return int(b.last - b.first + 1) }

// add appends the stored value of the next seq; ev is its decoded form
// (nil or a tombstone for a tombstone) and t its append time (unix ms).
func (b *segmentBuilder) add(seq eventlog.Seq, val []byte, did string, t int64) {
	if seq != b.last+1 {
		panic(fmt.Sprintf("backup: segment builder got seq %d after %d", seq, b.last))
	}
	b.last = seq
	b.raw.Write(binary.AppendUvarint(nil, uint64(len(val))))
	b.raw.Write(val)
	if did != "" {
		b.dids[did] = struct{}{}
	}
	if t > 0 {
		if b.minT == 0 || t < b.minT {
			b.minT = t
		}
		b.maxT = max(b.maxT, t)
	}
}

// encode compresses the records into a segment object.
func (b *segmentBuilder) encode() ([]byte, SegmentHeader) {
	body := encoder().EncodeAll(b.raw.Bytes(), make([]byte, 0, b.raw.Len()/3+64))
	sum := sha256.Sum256(body)
	dids := make([]string, 0, len(b.dids))
	for d := range b.dids {
		dids = append(dids, d)
	}
	slices.Sort(dids)
	h := SegmentHeader{Version: 1, First: b.first, Last: b.last, MinTime: b.minT, MaxTime: b.maxT,
		RawLen: int64(b.raw.Len()), BodyLen: int64(len(body)), BodySHA256: hex.EncodeToString(sum[:]), DIDs: dids}
	hj, err := json.Marshal(h)
	if err != nil {
		panic(err) // a header always encodes
	}
	out := make([]byte, 0, len(segMagic)+8+len(hj)+len(body))
	out = append(out, segMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(hj)))
	out = append(out, hj...)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(hj, crc32.MakeTable(crc32.Castagnoli)))
	out = append(out, body...)
	return out, h
}

// DecodeSegmentHeader parses the header at the start of a segment object;
// b may be only a prefix of it. It returns the header and the offset where
// the body starts, or ErrShortHeader (wrapped, with the length needed)
// when b ends inside the header.
func DecodeSegmentHeader(b []byte) (SegmentHeader, int, error) {
	var h SegmentHeader
	if len(b) < len(segMagic)+4 {
		return h, 0, fmt.Errorf("%w: need %d bytes", ErrShortHeader, len(segMagic)+4)
	}
	if string(b[:len(segMagic)]) != segMagic {
		return h, 0, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	n := int(binary.BigEndian.Uint32(b[len(segMagic):]))
	if n > maxHeaderLen {
		return h, 0, fmt.Errorf("%w: header of %d bytes", ErrCorrupt, n)
	}
	end := len(segMagic) + 4 + n + 4
	if len(b) < end {
		return h, 0, fmt.Errorf("%w: need %d bytes", ErrShortHeader, end)
	}
	hj := b[len(segMagic)+4 : end-4]
	if crc32.Checksum(hj, crc32.MakeTable(crc32.Castagnoli)) != binary.BigEndian.Uint32(b[end-4:]) {
		return h, 0, fmt.Errorf("%w: header checksum", ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(hj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, 0, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if err := h.check(); err != nil {
		return h, 0, err
	}
	return h, end, nil
}

func (h *SegmentHeader) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: header: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	switch {
	case h.Version != 1:
		return fmt.Errorf("%w: segment version %d", ErrUnknownVersion, h.Version)
	case h.First < 1 || h.Last < h.First:
		return bad("seqs %d..%d", h.First, h.Last)
	case h.Last-h.First >= MaxSegmentEvents:
		return bad("%d events", h.Last-h.First+1)
	case h.RawLen < int64(2*(h.Last-h.First+1)) || h.RawLen > MaxSegmentRaw:
		return bad("raw length %d for %d events", h.RawLen, h.Last-h.First+1)
	case h.BodyLen < 0 || len(h.BodySHA256) != 64:
		return bad("body")
	case h.MinTime < 0 || h.MaxTime < h.MinTime:
		return bad("times %d..%d", h.MinTime, h.MaxTime)
	}
	if _, err := hex.DecodeString(h.BodySHA256); err != nil {
		return bad("body checksum %q", h.BodySHA256)
	}
	for i, d := range h.DIDs {
		if d == "" || !strings.HasPrefix(d, "did:") || (i > 0 && h.DIDs[i-1] >= d) {
			return bad("dids not sorted and distinct at %d", i)
		}
	}
	return nil
}

// DecodeSegment parses and verifies a whole segment object: the header's
// checksum, the body's SHA-256 and length, its decompressed length, and
// exactly one non-empty record per seq. The values alias one buffer.
func DecodeSegment(b []byte) (*Segment, error) {
	h, off, err := DecodeSegmentHeader(b)
	if err != nil {
		return nil, err
	}
	body := b[off:]
	if int64(len(body)) != h.BodyLen {
		return nil, fmt.Errorf("%w: body of %d bytes, header says %d", ErrCorrupt, len(body), h.BodyLen)
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != h.BodySHA256 {
		return nil, fmt.Errorf("%w: body checksum mismatch (seqs %d..%d)", ErrCorrupt, h.First, h.Last)
	}
	raw, err := decompress(body, h.RawLen)
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
	}
	if int64(len(raw)) != h.RawLen {
		return nil, fmt.Errorf("%w: body decompresses to %d bytes, header says %d", ErrCorrupt, len(raw), h.RawLen)
	}
	n := int(h.Last - h.First + 1)
	vals := make([][]byte, 0, n)
	for len(raw) > 0 {
		l, k := binary.Uvarint(raw)
		if k <= 0 || l == 0 || l > uint64(len(raw)-k) {
			return nil, fmt.Errorf("%w: record %d", ErrCorrupt, len(vals))
		}
		if len(vals) == n {
			return nil, fmt.Errorf("%w: more than %d records", ErrCorrupt, n)
		}
		vals = append(vals, raw[k:k+int(l):k+int(l)])
		raw = raw[k+int(l):]
	}
	if len(vals) != n {
		return nil, fmt.Errorf("%w: %d records for seqs %d..%d", ErrCorrupt, len(vals), h.First, h.Last)
	}
	return &Segment{Header: h, Values: vals}, nil
}
