package car_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/mst/car"
)

// cmpCID compares CIDs by value (cid.Cid's only field is unexported).
var cmpCID = cmp.Comparer(func(a, b cid.Cid) bool { return a.Equals(b) })

// blockOf returns a CIDv1 sha2-256 block of data with the given codec.
func blockOf(codec uint64, data []byte) car.Block {
	sum := sha256.Sum256(data)
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil {
		panic(err)
	}
	return car.Block{CID: cid.NewCidV1(codec, mh), Data: data}
}

// cborBlock returns a dag-cbor block. The bytes need not be valid CBOR: the
// CAR layer never looks inside blocks.
func cborBlock(data []byte) car.Block { return blockOf(cid.DagCBOR, data) }

// randomBlocks returns n distinct dag-cbor blocks of 1..maxSize bytes.
func randomBlocks(rng *rand.Rand, n, maxSize int) []car.Block {
	out := make([]car.Block, n)
	for i := range out {
		data := make([]byte, 1+rng.IntN(maxSize))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		data[0] = byte(i) // distinct even when tiny
		out[i] = cborBlock(data)
	}
	return out
}

// writeCAR writes roots and blocks with Writer.
func writeCAR(t testing.TB, roots []cid.Cid, blocks []car.Block) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, roots...)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if err := w.Put(b.CID, b.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readCAR reads a whole CAR from r with Next.
func readCAR(r io.Reader, opts *car.ReaderOptions) ([]cid.Cid, []car.Block, error) {
	cr, err := car.NewReader(r, opts)
	if err != nil {
		return nil, nil, err
	}
	var blocks []car.Block
	for {
		c, data, err := cr.Next()
		if err == io.EOF {
			return cr.Roots(), blocks, nil
		}
		if err != nil {
			return cr.Roots(), blocks, err
		}
		blocks = append(blocks, car.Block{CID: c, Data: data})
	}
}

// cmpBlocks compares blocks by CID value and data bytes (nil == empty).
var cmpBlocks = cmp.Options{cmpCID, cmp.Transformer("data", func(b []byte) string { return string(b) })}
