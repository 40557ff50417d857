package blobstoretest

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Gen is size deterministic pseudo-random bytes made from seed as they are
// read: a blob of any size that takes no memory beyond a 64 KiB table. It
// is an io.Reader, io.ReaderAt and io.Seeker, like the *os.File uploads
// arrive in. Each 64 KiB chunk is the seed's table rotated by a
// pseudo-random amount, so chunks differ and reading is a copy.
type Gen struct {
	table     []byte
	seed      uint64
	size, off int64
}

const genChunk = 64 << 10

// NewGen returns the size bytes of seed, positioned at the start.
func NewGen(seed uint64, size int64) *Gen {
	t := make([]byte, genChunk)
	for i := 0; i < genChunk; i += 8 {
		binary.LittleEndian.PutUint64(t[i:], mix(seed, uint64(i/8)))
	}
	return &Gen{table: t, seed: seed, size: size}
}

// Size returns the number of bytes.
func (g *Gen) Size() int64 { return g.size }

// ReadAt implements io.ReaderAt.
func (g *Gen) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("blobstoretest: negative offset")
	}
	if off >= g.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > g.size-off {
		n = int(g.size - off)
	}
	for i := 0; i < n; {
		pos := off + int64(i)
		chunk := uint64(pos / genChunk)
		at := (int(pos%genChunk) + int(mix(^g.seed, chunk)%genChunk)) % genChunk
		end := min(n, i+genChunk-int(pos%genChunk)) // the end of this chunk
		k := copy(p[i:end], g.table[at:])
		if i+k < end {
			k += copy(p[i+k:end], g.table)
		}
		i += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read implements io.Reader.
func (g *Gen) Read(p []byte) (int, error) {
	n, err := g.ReadAt(p, g.off)
	g.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (g *Gen) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += g.off
	case io.SeekEnd:
		offset += g.size
	default:
		return 0, errors.New("blobstoretest: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("blobstoretest: negative position")
	}
	g.off = offset
	return offset, nil
}

// mix is splitmix64 of seed and a block number.
func mix(seed, block uint64) uint64 {
	z := seed*0x9e3779b97f4a7c15 + block + 1
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Bytes returns the size bytes of seed in memory.
func Bytes(seed uint64, size int) []byte {
	b := make([]byte, size)
	NewGen(seed, int64(size)).ReadAt(b, 0)
	return b
}

// CID returns the CIDv1 (raw, sha2-256) of data, as uploads are named.
func CID(data []byte) cid.Cid {
	sum := sha256.Sum256(data)
	return sumCID(sum[:])
}

// GenCID returns the CID of the bytes of NewGen(seed, size), streamed.
func GenCID(seed uint64, size int64) cid.Cid {
	h := sha256.New()
	if _, err := io.Copy(h, readerOnly{NewGen(seed, size)}); err != nil {
		panic(err)
	}
	return sumCID(h.Sum(nil))
}

func sumCID(sum []byte) cid.Cid {
	mh, err := multihash.Encode(sum, multihash.SHA2_256)
	if err != nil {
		panic(fmt.Sprintf("blobstoretest: %v", err))
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// readerOnly hides every method of a reader but Read (no ReaderAt, no
// Seeker, no WriterTo): a stream that can only be read once.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// ReaderOnly returns r as a plain io.Reader, as a network stream is.
func ReaderOnly(r io.Reader) io.Reader { return readerOnly{r} }

// ErrBoom is the error FailAfter's readers fail with.
var ErrBoom = errors.New("blobstoretest: reader failed")

// FailAfter returns a reader of r that fails with ErrBoom once n bytes
// were read. If r is an io.ReaderAt and io.Seeker, so is the result, and
// ReadAt fails for bytes at or past n.
func FailAfter(r io.Reader, n int64) io.Reader {
	if ra, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		return &failingFile{ra: ra, n: n}
	}
	return &failingReader{r: r, n: n}
}

type failingReader struct {
	r io.Reader
	n int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, ErrBoom
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	k, err := f.r.Read(p)
	f.n -= int64(k)
	return k, err
}

type failingFile struct {
	ra interface {
		io.ReaderAt
		io.Seeker
	}
	n int64
}

func (f *failingFile) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		if off >= f.n {
			return 0, ErrBoom
		}
		k, err := f.ra.ReadAt(p[:f.n-off], off)
		if err != nil {
			return k, err
		}
		return k, ErrBoom
	}
	return f.ra.ReadAt(p, off)
}

func (f *failingFile) Seek(offset int64, whence int) (int64, error) {
	return f.ra.Seek(offset, whence)
}

func (f *failingFile) Read(p []byte) (int, error) {
	off, err := f.ra.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	k, err := f.ReadAt(p, off)
	if _, serr := f.ra.Seek(off+int64(k), io.SeekStart); serr != nil {
		return k, serr
	}
	if err == io.EOF && k > 0 {
		err = nil
	}
	return k, err
}

// unreadable fails every read: a Put that reads it did not skip the work.
type unreadable struct{}

func (unreadable) Read([]byte) (int, error) {
	return 0, errors.New("blobstoretest: the reader of an existing blob was read")
}
