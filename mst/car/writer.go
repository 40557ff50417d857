package car

import (
	"bufio"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// Writer writes a CAR v1 stream: NewWriter writes the header, each Put one
// section. Output goes through a single buffer of BufferSize bytes (blocks
// larger than the free buffer are written through without copying); nothing
// else is kept, so memory stays constant however many blocks are written.
// Call Flush (or Close) when done. A Writer is not safe for concurrent use.
type Writer struct {
	bw      *bufio.Writer
	scratch [10]byte
	n       int64
	blocks  int64
	err     error
}

// NewWriter writes the header naming roots (zero or more; atproto commit
// CARs have exactly one, the commit CID) to w and returns a Writer for the
// blocks. Roots are not checked against any CID profile, only for being
// defined.
func NewWriter(w io.Writer, roots ...cid.Cid) (*Writer, error) {
	if err := checkRoots(roots); err != nil {
		return nil, err
	}
	cw := &Writer{bw: bufio.NewWriterSize(w, BufferSize)}
	h := appendHeader(nil, roots)
	if _, err := cw.bw.Write(h); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	cw.n = int64(len(h))
	return cw, nil
}

// Put writes one block. data is not retained. The CID is written as given:
// Put does not hash data (the caller's store already did).
func (w *Writer) Put(c cid.Cid, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if !c.Defined() {
		return fmt.Errorf("%w: Put of an undefined CID", ErrInvalidCID)
	}
	key := c.KeyString()
	prefix := appendUvarint(w.scratch[:0], uint64(len(key))+uint64(len(data)))
	if _, err := w.bw.Write(prefix); err != nil {
		return w.fail(err)
	}
	if _, err := w.bw.WriteString(key); err != nil {
		return w.fail(err)
	}
	if _, err := w.bw.Write(data); err != nil {
		return w.fail(err)
	}
	w.n += int64(len(prefix) + len(key) + len(data))
	w.blocks++
	return nil
}

// Flush writes any buffered bytes to the underlying io.Writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		return w.fail(err)
	}
	return nil
}

// Close flushes the Writer. It does not close the underlying io.Writer.
func (w *Writer) Close() error { return w.Flush() }

// BytesWritten returns the size of the CAR so far (header included),
// buffered bytes included.
func (w *Writer) BytesWritten() int64 { return w.n }

// Blocks returns the number of blocks Put so far.
func (w *Writer) Blocks() int64 { return w.blocks }

func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("%w: %w", ErrWrite, err)
	return w.err
}

// Marshal returns a whole CAR (header and blocks, in order) as one exactly
// sized []byte: the small in-memory variant of Writer, for firehose #commit
// "blocks" and other CARs built from a handful of blocks.
func Marshal(roots []cid.Cid, blocks ...Block) ([]byte, error) {
	if err := checkRoots(roots); err != nil {
		return nil, err
	}
	size := headerSize(roots)
	for i, b := range blocks {
		if !b.CID.Defined() {
			return nil, fmt.Errorf("%w: block %d has an undefined CID", ErrInvalidCID, i)
		}
		l := b.CID.ByteLen() + len(b.Data)
		size += uvarintLen(uint64(l)) + l
	}
	buf := appendHeader(make([]byte, 0, size), roots)
	for _, b := range blocks {
		buf = appendUvarint(buf, uint64(b.CID.ByteLen()+len(b.Data)))
		buf = append(buf, b.CID.KeyString()...)
		buf = append(buf, b.Data...)
	}
	return buf, nil
}
