package car

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"iter"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// ReaderOptions bounds what a Reader accepts. The zero value (or a nil
// *ReaderOptions) is the safe default for untrusted input: header ≤ 64 KiB,
// blocks ≤ 2 MiB, atproto CIDs only, every block verified against its CID, no
// limit on the number of blocks or total size (set those for uploads).
type ReaderOptions struct {
	// MaxHeaderSize is the largest header (the DAG-CBOR body, after the
	// length prefix) accepted. 0 means DefaultMaxHeaderSize.
	MaxHeaderSize int64
	// MaxBlockSize is the largest block data (excluding its CID) accepted.
	// 0 means DefaultMaxBlockSize. A section is rejected before anything is
	// allocated for it if its length prefix exceeds MaxBlockSize+MaxCIDSize.
	MaxBlockSize int64
	// MaxTotalBytes, if > 0, is the most input the Reader consumes, header
	// and length prefixes included. Checked before each allocation.
	MaxTotalBytes int64
	// MaxBlocks, if > 0, is the most blocks the Reader returns; one more
	// section is ErrTooManyBlocks.
	MaxBlocks int64
	// AllowAnyCID accepts any CID go-cid parses (CIDv0, other codecs, other
	// hash functions) in the header and the sections instead of only the
	// atproto profile (CIDv1, dag-cbor or raw, sha2-256). When verifying, a
	// CID whose hash function go-multihash cannot compute is still
	// ErrUnsupportedCID.
	AllowAnyCID bool
	// SkipVerify trusts that each block hashes to its CID. Only for input the
	// PDS wrote itself.
	SkipVerify bool
}

func (o *ReaderOptions) resolved() ReaderOptions {
	var r ReaderOptions
	if o != nil {
		r = *o
	}
	if r.MaxHeaderSize <= 0 {
		r.MaxHeaderSize = DefaultMaxHeaderSize
	}
	if r.MaxBlockSize <= 0 {
		r.MaxBlockSize = DefaultMaxBlockSize
	}
	return r
}

// Reader reads a CAR v1 stream one block at a time. A Reader is not safe for
// concurrent use.
type Reader struct {
	br interface {
		io.Reader
		io.ByteReader
	}
	opts   ReaderOptions
	roots  []cid.Cid
	n      int64
	blocks int64
	err    error
}

// NewReader reads and checks the header from r. If r is not an
// io.ByteReader it is wrapped in a buffer of BufferSize bytes, which may read
// past the end of the CAR. opts may be nil.
func NewReader(r io.Reader, opts *ReaderOptions) (*Reader, error) {
	cr := &Reader{opts: opts.resolved()}
	if br, ok := r.(interface {
		io.Reader
		io.ByteReader
	}); ok {
		cr.br = br
	} else {
		cr.br = bufio.NewReaderSize(r, BufferSize)
	}
	l, err := readUvarint(cr.br, "header")
	if err == io.EOF {
		return nil, truncated("header")
	}
	if err != nil {
		return nil, err
	}
	if l == 0 {
		return nil, fmt.Errorf("%w: zero-length header", ErrInvalidHeader)
	}
	if l > uint64(cr.opts.MaxHeaderSize) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrHeaderTooLarge, l, cr.opts.MaxHeaderSize)
	}
	need, err := cr.reserve(l)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, l)
	if err := cr.readFull(buf, "header"); err != nil {
		return nil, err
	}
	cr.n = need
	if cr.roots, err = decodeHeader(buf, cr.opts.AllowAnyCID); err != nil {
		return nil, err
	}
	return cr, nil
}

// Roots returns the header's roots (possibly none). The slice is the
// Reader's; do not modify it.
func (r *Reader) Roots() []cid.Cid { return r.roots }

// BytesRead returns the size of the header and the sections read so far
// (a section that failed to read whole is not counted).
func (r *Reader) BytesRead() int64 { return r.n }

// BlocksRead returns how many blocks Next has returned.
func (r *Reader) BlocksRead() int64 { return r.blocks }

// reserve checks that a length prefix of value l and the l bytes after it
// fit within MaxTotalBytes, and returns their size. It runs before any
// allocation; the caller adds the size to r.n once the bytes are read.
func (r *Reader) reserve(l uint64) (int64, error) {
	need := uint64(uvarintLen(l)) + l
	if r.opts.MaxTotalBytes > 0 && need > uint64(r.opts.MaxTotalBytes-r.n) {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, r.opts.MaxTotalBytes)
	}
	return int64(need), nil
}

func (r *Reader) readFull(buf []byte, what string) error {
	if _, err := io.ReadFull(r.br, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return truncated(what)
		}
		return fmt.Errorf("%w: %w", ErrRead, err)
	}
	return nil
}

// Next returns the next block: its CID and its bytes, which the caller owns.
// It returns io.EOF (unwrapped) once the input ends cleanly after a section,
// and otherwise an error matching one of the package's sentinels. Errors are
// sticky: every later call returns the same error.
func (r *Reader) Next() (cid.Cid, []byte, error) {
	if r.err != nil {
		return cid.Undef, nil, r.err
	}
	c, data, err := r.next()
	if err != nil {
		r.err = err
		return cid.Undef, nil, err
	}
	r.blocks++
	return c, data, nil
}

func (r *Reader) next() (cid.Cid, []byte, error) {
	l, err := readUvarint(r.br, "section")
	if err != nil {
		return cid.Undef, nil, err // io.EOF at a section boundary is the clean end
	}
	if l == 0 {
		return cid.Undef, nil, fmt.Errorf("%w: zero-length section after block %d", ErrInvalidSection, r.blocks)
	}
	if r.opts.MaxBlocks > 0 && r.blocks >= r.opts.MaxBlocks {
		return cid.Undef, nil, fmt.Errorf("%w: more than %d", ErrTooManyBlocks, r.opts.MaxBlocks)
	}
	if l > uint64(r.opts.MaxBlockSize)+MaxCIDSize {
		return cid.Undef, nil, fmt.Errorf("%w: section of %d bytes, limit %d plus CID", ErrBlockTooLarge, l, r.opts.MaxBlockSize)
	}
	need, err := r.reserve(l)
	if err != nil {
		return cid.Undef, nil, err
	}
	buf := make([]byte, l)
	if err := r.readFull(buf, "section"); err != nil {
		return cid.Undef, nil, err
	}
	r.n += need
	n, c, err := cid.CidFromBytes(buf)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("%w: block %d: %v", ErrInvalidCID, r.blocks, err)
	}
	if n > MaxCIDSize {
		return cid.Undef, nil, fmt.Errorf("%w: block %d: CID of %d bytes", ErrInvalidCID, r.blocks, n)
	}
	data := buf[n:]
	if int64(len(data)) > r.opts.MaxBlockSize {
		return cid.Undef, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBlockTooLarge, len(data), r.opts.MaxBlockSize)
	}
	if err := checkCID(c, r.opts.AllowAnyCID); err != nil {
		return cid.Undef, nil, err
	}
	if !r.opts.SkipVerify {
		if err := verify(c, buf[:n], data); err != nil {
			return cid.Undef, nil, err
		}
	}
	return c, data, nil
}

// verify checks that data hashes to c, whose binary form is raw.
func verify(c cid.Cid, raw, data []byte) error {
	if isAtprotoCID(raw) {
		sum := sha256.Sum256(data)
		if !bytes.Equal(sum[:], raw[4:]) {
			return fmt.Errorf("%w: %s", ErrHashMismatch, c)
		}
		return nil
	}
	p := c.Prefix()
	sum, err := multihash.Sum(data, p.MhType, p.MhLength)
	if err != nil {
		return fmt.Errorf("%w: cannot verify %s: %v", ErrUnsupportedCID, describeCID(c), err)
	}
	if !bytes.Equal(sum, c.Hash()) {
		return fmt.Errorf("%w: %s", ErrHashMismatch, c)
	}
	return nil
}

// All returns an iterator over the remaining blocks. It stops at the end of
// the input or at the first error; check Err afterwards.
func (r *Reader) All() iter.Seq2[cid.Cid, []byte] {
	return func(yield func(cid.Cid, []byte) bool) {
		for {
			c, data, err := r.Next()
			if err != nil || !yield(c, data) {
				return
			}
		}
	}
}

// Err returns the error that stopped the Reader, or nil if it has none or
// reached the end of the input cleanly.
func (r *Reader) Err() error {
	if r.err == io.EOF {
		return nil
	}
	return r.err
}

// Unmarshal reads a whole CAR held in memory, such as a firehose #commit
// "blocks" field, and returns its roots and blocks in order. The blocks do
// not alias b. opts may be nil.
func Unmarshal(b []byte, opts *ReaderOptions) ([]cid.Cid, []Block, error) {
	r, err := NewReader(bytes.NewReader(b), opts)
	if err != nil {
		return nil, nil, err
	}
	var blocks []Block
	for c, data := range r.All() {
		blocks = append(blocks, Block{CID: c, Data: data})
	}
	if err := r.Err(); err != nil {
		return nil, nil, err
	}
	return r.roots, blocks, nil
}

// BlockMap reads a whole CAR held in memory and returns its blocks by CID
// (for looking records up in a commit's CAR slice). opts may be nil.
func BlockMap(b []byte, opts *ReaderOptions) (map[cid.Cid][]byte, error) {
	_, blocks, err := Unmarshal(b, opts)
	if err != nil {
		return nil, err
	}
	m := make(map[cid.Cid][]byte, len(blocks))
	for _, bl := range blocks {
		m[bl.CID] = bl.Data
	}
	return m, nil
}
