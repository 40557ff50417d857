package car_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/mst/car"
)

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	commit := cborBlock([]byte("commit"))
	big := make([]byte, car.DefaultMaxBlockSize)
	for i := range big {
		big[i] = byte(i)
	}
	tests := []struct {
		name   string
		roots  []cid.Cid
		blocks []car.Block
	}{
		{"no roots no blocks", nil, nil},
		{"root only", []cid.Cid{commit.CID}, nil},
		{"commit slice", []cid.Cid{commit.CID}, append([]car.Block{commit}, randomBlocks(rng, 5, 300)...)},
		{"several roots", []cid.Cid{commit.CID, cborBlock([]byte("x")).CID, commit.CID}, []car.Block{commit}},
		{"no roots (getBlocks)", nil, randomBlocks(rng, 20, 2000)},
		{"empty raw block", []cid.Cid{commit.CID}, []car.Block{blockOf(cid.Raw, nil), commit}},
		{"duplicate blocks", []cid.Cid{commit.CID}, []car.Block{commit, commit}},
		{"block at MaxBlockSize", []cid.Cid{commit.CID}, []car.Block{cborBlock(big), commit}},
		{"many blocks", []cid.Cid{commit.CID}, randomBlocks(rng, 3000, 600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := writeCAR(t, tt.roots, tt.blocks)

			// Marshal builds the same bytes in memory.
			m, err := car.Marshal(tt.roots, tt.blocks...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m, enc) {
				t.Fatalf("Marshal differs from Writer output")
			}
			if len(m) != cap(m) {
				t.Errorf("Marshal: len %d cap %d, want exact size", len(m), cap(m))
			}

			readers := map[string]func() io.Reader{
				"bytes.Reader":    func() io.Reader { return bytes.NewReader(enc) },
				"one byte a time": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(enc)) },
				"data with EOF":   func() io.Reader { return iotest.DataErrReader(iotest.HalfReader(bytes.NewReader(enc))) },
			}
			for rname, mk := range readers {
				roots, blocks, err := readCAR(mk(), nil)
				if err != nil {
					t.Fatalf("%s: %v", rname, err)
				}
				if diff := cmp.Diff(tt.roots, roots, cmpCID, cmpEmpty); diff != "" {
					t.Errorf("%s: roots (-want +got):\n%s", rname, diff)
				}
				if diff := cmp.Diff(tt.blocks, blocks, cmpBlocks, cmpEmpty); diff != "" {
					t.Errorf("%s: blocks (-want +got):\n%s", rname, diff)
				}
			}

			// Unmarshal and the iterator agree with Next.
			roots, blocks, err := car.Unmarshal(enc, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.roots, roots, cmpCID, cmpEmpty); diff != "" {
				t.Errorf("Unmarshal roots (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.blocks, blocks, cmpBlocks, cmpEmpty); diff != "" {
				t.Errorf("Unmarshal blocks (-want +got):\n%s", diff)
			}
			r, err := car.NewReader(bytes.NewReader(enc), nil)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			for c, data := range r.All() {
				if !c.Equals(tt.blocks[n].CID) || !bytes.Equal(data, tt.blocks[n].Data) {
					t.Fatalf("All: block %d differs", n)
				}
				n++
			}
			if err := r.Err(); err != nil || n != len(tt.blocks) {
				t.Fatalf("All: %d blocks, err %v; want %d, nil", n, err, len(tt.blocks))
			}
			if r.BytesRead() != int64(len(enc)) || r.BlocksRead() != int64(n) {
				t.Errorf("BytesRead %d BlocksRead %d, want %d %d", r.BytesRead(), r.BlocksRead(), len(enc), n)
			}
			// io.EOF is sticky.
			if _, _, err := r.Next(); err != io.EOF {
				t.Errorf("Next after end: %v, want io.EOF", err)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.FilterValues(func(a, b []cid.Cid) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

// The header is the canonical DAG-CBOR encoding, pinned byte for byte.
func TestHeaderGolden(t *testing.T) {
	root, err := cid.Decode("bafyreib7z46fymz4v6c2w4a56ykndzzikmeo4ign3th67sxxesvx3ydpua")
	if err != nil {
		t.Fatal(err)
	}
	got, err := car.Marshal([]cid.Cid{root})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{
		0x3a,                          // header length 58
		0xa2,                          // map(2)
		0x65, 'r', 'o', 'o', 't', 's', // "roots"
		0x81,                         // array(1)
		0xd8, 0x2a, 0x58, 0x25, 0x00, // tag 42, bytes(37), multibase identity prefix
	}, root.Bytes()...)
	want = append(want, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01)
	if !bytes.Equal(got, want) {
		t.Fatalf("header\n got %x\nwant %x", got, want)
	}
}

// Raw CBOR and section builders for malformed inputs.
func uv(x uint64) []byte { return binary.AppendUvarint(nil, x) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// lp length-prefixes b (a header body or a section).
func lp(b []byte) []byte { return cat(uv(uint64(len(b))), b) }

func cborText(s string) []byte { return append([]byte{0x60 | byte(len(s))}, s...) }

func cborCID(c []byte) []byte {
	if len(c)+1 < 24 {
		return cat([]byte{0xd8, 0x2a, 0x40 | byte(len(c)+1), 0x00}, c)
	}
	return cat([]byte{0xd8, 0x2a, 0x58, byte(len(c) + 1), 0x00}, c)
}

var (
	kRoots   = cborText("roots")
	kVersion = cborText("version")
	noRoots  = []byte{0x80}
	v1       = []byte{0x01}
)

func TestMalformed(t *testing.T) {
	good := cborBlock([]byte("hello"))
	okHeader := lp(cat([]byte{0xa2}, kRoots, []byte{0x81}, cborCID(good.CID.Bytes()), kVersion, v1))
	section := func(c []byte, data []byte) []byte { return lp(cat(c, data)) }
	goodSec := section(good.CID.Bytes(), good.Data)

	cidV0 := func(data []byte) cid.Cid {
		mh, _ := multihash.Sum(data, multihash.SHA2_256, -1)
		return cid.NewCidV0(mh)
	}
	sha512CID := func(data []byte) cid.Cid {
		sum := sha512.Sum512(data)
		mh, _ := multihash.Encode(sum[:], multihash.SHA2_512)
		return cid.NewCidV1(cid.DagCBOR, mh)
	}
	dagPB := blockOf(cid.DagProtobuf, []byte("hello"))
	unknownHash := func() cid.Cid {
		mh, _ := multihash.Encode(make([]byte, 32), 0x3ffff0)
		return cid.NewCidV1(cid.DagCBOR, mh)
	}()
	longCID := func() cid.Cid {
		mh, _ := multihash.Sum(make([]byte, 200), multihash.IDENTITY, -1)
		return cid.NewCidV1(cid.Raw, mh)
	}()

	tests := []struct {
		name string
		in   []byte
		opts *car.ReaderOptions
		want []error // every one must match
	}{
		// Header framing.
		{"empty input", nil, nil, []error{car.ErrTruncated, io.ErrUnexpectedEOF}},
		{"truncated header varint", []byte{0x80}, nil, []error{car.ErrTruncated, io.ErrUnexpectedEOF}},
		{"non-minimal header varint", []byte{0x81, 0x00}, nil, []error{car.ErrInvalidVarint}},
		{"10-byte varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, nil, []error{car.ErrInvalidVarint}},
		{"64-bit varint", uv(1 << 63), nil, []error{car.ErrInvalidVarint}},
		{"zero-length header", []byte{0x00}, nil, []error{car.ErrInvalidHeader}},
		{"absurd header length", uv(1<<62 + 12345), nil, []error{car.ErrHeaderTooLarge}},
		{"header over default limit", uv(car.DefaultMaxHeaderSize + 1), nil, []error{car.ErrHeaderTooLarge}},
		{"header over option limit", okHeader, &car.ReaderOptions{MaxHeaderSize: 10}, []error{car.ErrHeaderTooLarge}},
		{"header truncated", okHeader[:20], nil, []error{car.ErrTruncated, io.ErrUnexpectedEOF}},
		{"header length only", uv(50), nil, []error{car.ErrTruncated}},
		{"header over MaxTotalBytes", okHeader, &car.ReaderOptions{MaxTotalBytes: int64(len(okHeader) - 1)}, []error{car.ErrTooLarge}},

		// Header content.
		{"header is an array", lp([]byte{0x82, 0x01, 0x80}), nil, []error{car.ErrInvalidHeader}},
		{"header is an int", lp([]byte{0x01}), nil, []error{car.ErrInvalidHeader}},
		{"header is empty map", lp([]byte{0xa0}), nil, []error{car.ErrInvalidHeader}},
		{"header map of 3", lp(cat([]byte{0xa3}, kRoots, noRoots, kVersion, v1, cborText("x"), v1)), nil, []error{car.ErrInvalidHeader}},
		{"header map of 2^64-1", lp([]byte{0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), nil, []error{car.ErrInvalidHeader}},
		{"indefinite map", lp(cat([]byte{0xbf}, kRoots, noRoots, kVersion, v1, []byte{0xff})), nil, []error{car.ErrInvalidHeader}},
		{"carv2 pragma", lp(cat([]byte{0xa1}, kVersion, []byte{0x02})), nil, []error{car.ErrUnsupportedVersion}},
		{"carv2 file", cat(lp(cat([]byte{0xa1}, kVersion, []byte{0x02})), make([]byte, 40), okHeader, goodSec), nil, []error{car.ErrUnsupportedVersion}},
		{"version 0", lp(cat([]byte{0xa2}, kRoots, noRoots, kVersion, []byte{0x00})), nil, []error{car.ErrUnsupportedVersion}},
		{"version 2 with roots", lp(cat([]byte{0xa2}, kRoots, noRoots, kVersion, []byte{0x02})), nil, []error{car.ErrUnsupportedVersion}},
		{"version huge", lp(cat([]byte{0xa2}, kRoots, noRoots, kVersion, []byte{0x1b, 0, 0, 0, 1, 0, 0, 0, 1})), nil, []error{car.ErrUnsupportedVersion}},
		{"version negative", lp(cat([]byte{0xa2}, kRoots, noRoots, kVersion, []byte{0x20})), nil, []error{car.ErrInvalidHeader}},
		{"version text", lp(cat([]byte{0xa2}, kRoots, noRoots, kVersion, cborText("1"))), nil, []error{car.ErrInvalidHeader}},
		{"version float", lp(cat([]byte{0xa2}, kRoots, noRoots, kVersion, []byte{0xf9, 0x3c, 0x00})), nil, []error{car.ErrInvalidHeader}},
		{"version non-minimal", lp(cat([]byte{0xa2}, kRoots, noRoots, kVersion, []byte{0x18, 0x01})), nil, []error{car.ErrInvalidHeader}},
		{"version missing", lp(cat([]byte{0xa1}, kRoots, noRoots)), nil, []error{car.ErrInvalidHeader}},
		{"roots missing", lp(cat([]byte{0xa1}, kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"roots not array", lp(cat([]byte{0xa2}, kRoots, []byte{0x01}, kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"roots is a map", lp(cat([]byte{0xa2}, kRoots, []byte{0xa0}, kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"roots null", lp(cat([]byte{0xa2}, kRoots, []byte{0xf6}, kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"roots count absurd", lp(cat([]byte{0xa2}, kRoots, []byte{0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"roots count past end", lp(cat([]byte{0xa2}, kRoots, []byte{0x82}, cborCID(good.CID.Bytes()), kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"root untagged bytes", lp(cat([]byte{0xa2}, kRoots, []byte{0x81, 0x58, 0x25, 0x00}, good.CID.Bytes(), kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"root tag 43", lp(cat([]byte{0xa2}, kRoots, []byte{0x81, 0xd8, 0x2b, 0x58, 0x25, 0x00}, good.CID.Bytes(), kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"root tag 42 on text", lp(cat([]byte{0xa2}, kRoots, []byte{0x81, 0xd8, 0x2a}, cborText("bafy"), kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"root without 0x00 prefix", lp(cat([]byte{0xa2}, kRoots, []byte{0x81, 0xd8, 0x2a, 0x58, 0x24}, good.CID.Bytes(), kVersion, v1)), nil, []error{car.ErrInvalidHeader, car.ErrInvalidCID}},
		{"root empty bytes", lp(cat([]byte{0xa2}, kRoots, []byte{0x81, 0xd8, 0x2a, 0x40}, kVersion, v1)), nil, []error{car.ErrInvalidHeader, car.ErrInvalidCID}},
		{"root garbage CID", lp(cat([]byte{0xa2}, kRoots, []byte{0x81}, cborCID([]byte{0x01, 0x71, 0x12, 0x20, 0xaa}), kVersion, v1)), nil, []error{car.ErrInvalidHeader, car.ErrInvalidCID}},
		{"root CID with trailing byte", lp(cat([]byte{0xa2}, kRoots, []byte{0x81}, cborCID(append(good.CID.Bytes(), 0)), kVersion, v1)), nil, []error{car.ErrInvalidHeader, car.ErrInvalidCID}},
		{"root CIDv0", lp(cat([]byte{0xa2}, kRoots, []byte{0x81}, cborCID(cidV0([]byte("x")).Bytes()), kVersion, v1)), nil, []error{car.ErrInvalidHeader, car.ErrUnsupportedCID}},
		{"root bytes past end", lp(cat([]byte{0xa2}, kRoots, []byte{0x81, 0xd8, 0x2a, 0x5a, 0x7f, 0xff, 0xff, 0xff})), nil, []error{car.ErrInvalidHeader}},
		{"unknown key", lp(cat([]byte{0xa2}, kRoots, noRoots, cborText("extra"), v1)), nil, []error{car.ErrInvalidHeader}},
		{"duplicate version", lp(cat([]byte{0xa2}, kVersion, v1, kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"duplicate roots", lp(cat([]byte{0xa2}, kRoots, noRoots, kRoots, noRoots)), nil, []error{car.ErrInvalidHeader}},
		{"key not text", lp(cat([]byte{0xa2, 0x01}, noRoots, kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"key length past end", lp([]byte{0xa2, 0x7a, 0xff, 0xff, 0xff, 0xff}), nil, []error{car.ErrInvalidHeader}},
		{"key non-minimal length", lp(cat([]byte{0xa2, 0x78, 0x05}, []byte("roots"), noRoots, kVersion, v1)), nil, []error{car.ErrInvalidHeader}},
		{"reserved additional info", lp([]byte{0xbc}), nil, []error{car.ErrInvalidHeader}},
		{"trailing bytes in header", lp(cat([]byte{0xa2}, kRoots, noRoots, kVersion, v1, []byte{0x00})), nil, []error{car.ErrInvalidHeader}},
		{"truncated CBOR head", lp([]byte{0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x99, 0x01}), nil, []error{car.ErrInvalidHeader}},

		// Sections.
		{"zero-length section", cat(okHeader, []byte{0x00}), nil, []error{car.ErrInvalidSection}},
		{"zero-length section after block", cat(okHeader, goodSec, []byte{0x00}), nil, []error{car.ErrInvalidSection}},
		{"truncated section varint", cat(okHeader, []byte{0xff}), nil, []error{car.ErrTruncated, io.ErrUnexpectedEOF}},
		{"non-minimal section varint", cat(okHeader, []byte{0x85, 0x80, 0x00}), nil, []error{car.ErrInvalidVarint}},
		{"overlong section varint", cat(okHeader, bytes.Repeat([]byte{0x80}, 12)), nil, []error{car.ErrInvalidVarint}},
		{"absurd section length", cat(okHeader, uv(1<<62), []byte("x")), nil, []error{car.ErrBlockTooLarge}},
		{"section just over limit", cat(okHeader, uv(car.DefaultMaxBlockSize+car.MaxCIDSize+1)), nil, []error{car.ErrBlockTooLarge}},
		{"section truncated", cat(okHeader, goodSec[:len(goodSec)-1]), nil, []error{car.ErrTruncated, io.ErrUnexpectedEOF}},
		{"section length only", cat(okHeader, uv(100)), nil, []error{car.ErrTruncated}},
		{"section shorter than CID", cat(okHeader, lp(good.CID.Bytes()[:10])), nil, []error{car.ErrInvalidCID}},
		{"section CID version 2", cat(okHeader, lp([]byte{0x02, 0x71, 0x12, 0x01, 0x00, 'x'})), nil, []error{car.ErrInvalidCID}},
		{"section CID garbage", cat(okHeader, lp([]byte{0xff, 0xff, 0xff})), nil, []error{car.ErrInvalidCID}},
		{"section CID too long", cat(okHeader, section(longCID.Bytes(), nil)), &car.ReaderOptions{AllowAnyCID: true}, []error{car.ErrInvalidCID}},
		{"block over MaxBlockSize", cat(okHeader, goodSec), &car.ReaderOptions{MaxBlockSize: 4}, []error{car.ErrBlockTooLarge}},
		{"CIDv0 block", cat(okHeader, section(cidV0([]byte("x")).Bytes(), []byte("x"))), nil, []error{car.ErrUnsupportedCID}},
		{"sha2-512 block", cat(okHeader, section(sha512CID([]byte("x")).Bytes(), []byte("x"))), nil, []error{car.ErrUnsupportedCID}},
		{"dag-pb block", cat(okHeader, section(dagPB.CID.Bytes(), dagPB.Data)), nil, []error{car.ErrUnsupportedCID}},
		{"hash mismatch", cat(okHeader, section(good.CID.Bytes(), []byte("hellO"))), nil, []error{car.ErrHashMismatch}},
		{"hash mismatch empty data", cat(okHeader, section(good.CID.Bytes(), nil)), nil, []error{car.ErrHashMismatch}},
		{"unknown hash, any CID", cat(okHeader, section(unknownHash.Bytes(), []byte("x"))), &car.ReaderOptions{AllowAnyCID: true}, []error{car.ErrUnsupportedCID}},
		{"sha2-512 mismatch, any CID", cat(okHeader, section(sha512CID([]byte("x")).Bytes(), []byte("y"))), &car.ReaderOptions{AllowAnyCID: true}, []error{car.ErrHashMismatch}},
		{"CIDv0 mismatch, any CID", cat(okHeader, section(cidV0([]byte("x")).Bytes(), []byte("y"))), &car.ReaderOptions{AllowAnyCID: true}, []error{car.ErrHashMismatch}},
		{"too many blocks", cat(okHeader, goodSec, goodSec, goodSec), &car.ReaderOptions{MaxBlocks: 2}, []error{car.ErrTooManyBlocks}},
		{"too many bytes", cat(okHeader, goodSec, goodSec), &car.ReaderOptions{MaxTotalBytes: int64(len(okHeader) + 2*len(goodSec) - 1)}, []error{car.ErrTooLarge}},
		{"too many bytes, absurd section", cat(okHeader, uv(1000)), &car.ReaderOptions{MaxTotalBytes: int64(len(okHeader) + 500), MaxBlockSize: 1 << 40}, []error{car.ErrTooLarge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readCAR(bytes.NewReader(tt.in), tt.opts)
			if err == nil {
				t.Fatalf("no error, want %v", tt.want)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q does not match %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "car: ") {
				t.Errorf("error %q lacks the car: prefix", err)
			}
			// The same input through the buffered path fails the same way.
			_, _, err2 := readCAR(iotest.OneByteReader(bytes.NewReader(tt.in)), tt.opts)
			if err2 == nil || err2.Error() != err.Error() {
				t.Errorf("unbuffered: %v\n  buffered: %v", err, err2)
			}
		})
	}
}

// Errors are sticky, and the blocks before a bad one are delivered.
func TestErrorIsSticky(t *testing.T) {
	good := cborBlock([]byte("a"))
	in := cat(writeCAR(t, []cid.Cid{good.CID}, []car.Block{good}), lp(cat(good.CID.Bytes(), []byte("b"))))
	r, err := car.NewReader(bytes.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(); err != nil {
		t.Fatalf("first block: %v", err)
	}
	_, _, err1 := r.Next()
	_, _, err2 := r.Next()
	if !errors.Is(err1, car.ErrHashMismatch) || err1 != err2 {
		t.Fatalf("errors %v, %v: want the same ErrHashMismatch twice", err1, err2)
	}
	if r.Err() != err1 {
		t.Fatalf("Err() = %v", r.Err())
	}
	if _, _, err := car.Unmarshal(in, nil); !errors.Is(err, car.ErrHashMismatch) {
		t.Fatalf("Unmarshal: %v", err)
	}
}

// An error from the underlying reader is wrapped, not mistaken for the end.
func TestReadErrorPropagates(t *testing.T) {
	boom := errors.New("boom")
	enc := writeCAR(t, nil, randomBlocks(rand.New(rand.NewPCG(3, 4)), 3, 100))
	for cut := 0; cut < len(enc); cut++ {
		r := io.MultiReader(bytes.NewReader(enc[:cut]), iotest.ErrReader(boom))
		_, _, err := readCAR(r, nil)
		if !errors.Is(err, boom) || !errors.Is(err, car.ErrRead) {
			t.Fatalf("cut %d: %v, want ErrRead wrapping boom", cut, err)
		}
	}
}

// Every strict prefix of a valid CAR fails, except prefixes ending exactly at
// a section boundary, which read as a shorter valid CAR.
func TestTruncationAnywhere(t *testing.T) {
	blocks := randomBlocks(rand.New(rand.NewPCG(5, 6)), 4, 200)
	enc := writeCAR(t, []cid.Cid{blocks[0].CID}, blocks)
	boundaries := map[int]int{}
	off, err := car.Marshal([]cid.Cid{blocks[0].CID})
	if err != nil {
		t.Fatal(err)
	}
	pos := len(off)
	boundaries[pos] = 0
	for i, b := range blocks {
		pos += len(uv(uint64(b.CID.ByteLen()+len(b.Data)))) + b.CID.ByteLen() + len(b.Data)
		boundaries[pos] = i + 1
	}
	for cut := 0; cut <= len(enc); cut++ {
		_, got, err := readCAR(bytes.NewReader(enc[:cut]), nil)
		if n, ok := boundaries[cut]; ok {
			if err != nil || len(got) != n {
				t.Errorf("cut %d (boundary): %d blocks, %v; want %d, nil", cut, len(got), err, n)
			}
			continue
		}
		if !errors.Is(err, car.ErrTruncated) {
			t.Errorf("cut %d: %v, want ErrTruncated", cut, err)
		}
	}
}

func TestLimitsAtTheEdge(t *testing.T) {
	blocks := randomBlocks(rand.New(rand.NewPCG(7, 8)), 5, 100)
	blocks = append(blocks, cborBlock(make([]byte, 1000)))
	enc := writeCAR(t, nil, blocks)
	opts := &car.ReaderOptions{MaxBlocks: 6, MaxTotalBytes: int64(len(enc)), MaxBlockSize: 1000, MaxHeaderSize: int64(len(enc))}
	if _, got, err := readCAR(bytes.NewReader(enc), opts); err != nil || len(got) != 6 {
		t.Fatalf("limits exactly met: %d blocks, %v", len(got), err)
	}
	for name, o := range map[string]car.ReaderOptions{
		"MaxBlocks":     {MaxBlocks: 5},
		"MaxTotalBytes": {MaxTotalBytes: int64(len(enc)) - 1},
		"MaxBlockSize":  {MaxBlockSize: 999},
	} {
		if _, _, err := readCAR(bytes.NewReader(enc), &o); err == nil {
			t.Errorf("%s one under: no error", name)
		}
	}
}

func TestCIDPolicy(t *testing.T) {
	raw := blockOf(cid.Raw, []byte("blob bytes"))
	mh0, _ := multihash.Sum([]byte("v0"), multihash.SHA2_256, -1)
	v0 := car.Block{CID: cid.NewCidV0(mh0), Data: []byte("v0")}
	mh512, _ := multihash.Sum([]byte("512"), multihash.SHA2_512, -1)
	b512 := car.Block{CID: cid.NewCidV1(cid.DagCBOR, mh512), Data: []byte("512")}
	mhID, _ := multihash.Sum([]byte("inline"), multihash.IDENTITY, -1)
	ident := car.Block{CID: cid.NewCidV1(cid.Raw, mhID), Data: []byte("inline")}

	// raw (blobs) is in the atproto profile.
	if _, got, err := readCAR(bytes.NewReader(writeCAR(t, []cid.Cid{raw.CID}, []car.Block{raw})), nil); err != nil || len(got) != 1 {
		t.Fatalf("raw block: %v", err)
	}
	all := []car.Block{v0, b512, ident, raw}
	enc := writeCAR(t, []cid.Cid{v0.CID, b512.CID}, all)
	if _, _, err := readCAR(bytes.NewReader(enc), nil); !errors.Is(err, car.ErrUnsupportedCID) {
		t.Fatalf("default policy: %v, want ErrUnsupportedCID", err)
	}
	roots, got, err := readCAR(bytes.NewReader(enc), &car.ReaderOptions{AllowAnyCID: true})
	if err != nil {
		t.Fatalf("AllowAnyCID: %v", err)
	}
	if diff := cmp.Diff(all, got, cmpBlocks); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
	if len(roots) != 2 || !roots[0].Equals(v0.CID) {
		t.Errorf("roots %v", roots)
	}
}

func TestSkipVerify(t *testing.T) {
	good := cborBlock([]byte("a"))
	in := cat(lp(cat([]byte{0xa2}, kRoots, noRoots, kVersion, v1)), lp(cat(good.CID.Bytes(), []byte("not a"))))
	_, got, err := readCAR(bytes.NewReader(in), &car.ReaderOptions{SkipVerify: true})
	if err != nil || len(got) != 1 || string(got[0].Data) != "not a" {
		t.Fatalf("SkipVerify: %v %v", got, err)
	}
	if _, _, err := readCAR(bytes.NewReader(in), nil); !errors.Is(err, car.ErrHashMismatch) {
		t.Fatalf("default: %v", err)
	}
}

// The header is accepted in either key order (go-car's decoder does too).
func TestHeaderKeyOrder(t *testing.T) {
	good := cborBlock([]byte("a"))
	in := cat(lp(cat([]byte{0xa2}, kVersion, v1, kRoots, []byte{0x81}, cborCID(good.CID.Bytes()))), lp(cat(good.CID.Bytes(), good.Data)))
	roots, got, err := readCAR(bytes.NewReader(in), nil)
	if err != nil || len(roots) != 1 || !roots[0].Equals(good.CID) || len(got) != 1 {
		t.Fatalf("version-first header: %v %v %v", roots, got, err)
	}
}

// Blocks returned by Next are the caller's: later reads do not overwrite them.
func TestBlocksAreOwned(t *testing.T) {
	blocks := randomBlocks(rand.New(rand.NewPCG(9, 10)), 50, 100)
	enc := writeCAR(t, nil, blocks)
	_, got, err := readCAR(iotest.HalfReader(bytes.NewReader(enc)), nil)
	if err != nil {
		t.Fatal(err)
	}
	clear(enc)
	if diff := cmp.Diff(blocks, got, cmpBlocks); diff != "" {
		t.Fatalf("blocks changed (-want +got):\n%s", diff)
	}
}
