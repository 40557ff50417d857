package car_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/mst/car"
)

var sentinels = []error{
	car.ErrTruncated, car.ErrInvalidVarint, car.ErrHeaderTooLarge, car.ErrInvalidHeader,
	car.ErrUnsupportedVersion, car.ErrInvalidSection, car.ErrBlockTooLarge, car.ErrTooLarge,
	car.ErrTooManyBlocks, car.ErrInvalidCID, car.ErrUnsupportedCID, car.ErrHashMismatch,
}

// Fuzz limits: small, so the fuzzer reaches them.
const (
	fuzzMaxHeader = 1 << 10
	fuzzMaxBlock  = 4 << 10
	fuzzMaxTotal  = 64 << 10
	fuzzMaxBlocks = 64
)

// FuzzCARRead feeds arbitrary bytes to the Reader. It must never panic, must
// stay within its limits, must fail only with the package's sentinels, must
// return only blocks that pass the CID policy and hash to their CIDs, and
// whatever it accepts must round-trip through Marshal and be read the same
// by go-car v2.
//
// flags: bit 0 AllowAnyCID, bit 1 SkipVerify, bit 2 read one byte at a time
// (the buffered path).
func FuzzCARRead(f *testing.F) {
	rng := rand.New(rand.NewPCG(31, 32))
	bs := randomBlocks(rng, 4, 64)
	mh0, _ := multihash.Sum([]byte("v0"), multihash.SHA2_256, -1)
	v0 := car.Block{CID: cid.NewCidV0(mh0), Data: []byte("v0")}
	mhID, _ := multihash.Sum([]byte("id"), multihash.IDENTITY, -1)
	ident := car.Block{CID: cid.NewCidV1(cid.Raw, mhID), Data: []byte("id")}
	seeds := [][]byte{
		nil,
		{0x00},
		{0x80},
		mustMarshal(nil),
		mustMarshal([]cid.Cid{bs[0].CID}),
		mustMarshal([]cid.Cid{bs[0].CID}, bs...),
		mustMarshal(nil, bs[1], blockOf(cid.Raw, nil)),
		mustMarshal([]cid.Cid{v0.CID}, v0, ident, bs[2]),
		cat(mustMarshal(nil, bs[0]), []byte{0x00}),
		cat(lp(cat([]byte{0xa2}, kVersion, v1, kRoots, noRoots)), lp(cat(bs[0].CID.Bytes(), bs[0].Data))),
		lp(cat([]byte{0xa1}, kVersion, []byte{0x02})),
		cat(mustMarshal(nil), lp(cat(bs[0].CID.Bytes(), []byte("wrong")))),
	}
	for _, s := range seeds {
		for flags := range uint8(8) {
			f.Add(s, flags)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, flags uint8) {
		opts := &car.ReaderOptions{
			MaxHeaderSize: fuzzMaxHeader,
			MaxBlockSize:  fuzzMaxBlock,
			MaxTotalBytes: fuzzMaxTotal,
			MaxBlocks:     fuzzMaxBlocks,
			AllowAnyCID:   flags&1 != 0,
			SkipVerify:    flags&2 != 0,
		}
		var in io.Reader = bytes.NewReader(data)
		if flags&4 != 0 {
			in = iotest.OneByteReader(in)
		}
		checkErr := func(err error) {
			if err == nil || err == io.EOF {
				return
			}
			if !strings.HasPrefix(err.Error(), "car: ") {
				t.Fatalf("error without car: prefix: %v", err)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error matches no sentinel: %v", err)
		}

		r, err := car.NewReader(in, opts)
		if err != nil {
			checkErr(err)
			return
		}
		roots := r.Roots()
		var got []car.Block
		for {
			c, d, err := r.Next()
			if err != nil {
				checkErr(err)
				if _, _, again := r.Next(); again != err {
					t.Fatalf("error not sticky: %v then %v", err, again)
				}
				if err != io.EOF {
					return
				}
				break
			}
			if int64(len(d)) > fuzzMaxBlock {
				t.Fatalf("block of %d bytes", len(d))
			}
			if !opts.AllowAnyCID && !isAtproto(c) {
				t.Fatalf("CID %s outside the atproto profile", c)
			}
			if !opts.SkipVerify {
				sum, err := c.Prefix().Sum(d)
				if err != nil || !sum.Equals(c) {
					t.Fatalf("block %s does not verify: %v", c, err)
				}
			}
			got = append(got, car.Block{CID: c, Data: d})
			if r.BytesRead() > fuzzMaxTotal || r.BlocksRead() > fuzzMaxBlocks {
				t.Fatalf("limits passed: %d bytes, %d blocks", r.BytesRead(), r.BlocksRead())
			}
		}
		// Clean end: everything was consumed, and the content round-trips.
		if r.BytesRead() != int64(len(data)) {
			t.Fatalf("clean EOF after %d of %d bytes", r.BytesRead(), len(data))
		}
		if !opts.AllowAnyCID {
			for _, c := range roots {
				if !isAtproto(c) {
					t.Fatalf("root %s outside the atproto profile", c)
				}
			}
		}
		enc, err := car.Marshal(roots, got...)
		if err != nil {
			t.Fatal(err)
		}
		roots2, got2, err := car.Unmarshal(enc, opts)
		if err != nil {
			t.Fatalf("re-read of Marshal output: %v", err)
		}
		if diff := cmp.Diff(roots, roots2, cmpCID, cmpEmpty); diff != "" {
			t.Fatalf("roots changed (-first +again):\n%s", diff)
		}
		if diff := cmp.Diff(got, got2, cmpBlocks, cmpEmpty); diff != "" {
			t.Fatalf("blocks changed (-first +again):\n%s", diff)
		}
		if opts.SkipVerify {
			return // go-car would (rightly) reject unverified blocks
		}
		br, err := carv2.NewBlockReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("we accept, go-car v2 rejects the header: %v", err)
		}
		if diff := cmp.Diff(roots, br.Roots, cmpCID, cmpEmpty); diff != "" {
			t.Fatalf("roots differ from go-car v2 (-ours +go-car):\n%s", diff)
		}
		for i := 0; ; i++ {
			blk, err := br.Next()
			if err == io.EOF {
				if i != len(got) {
					t.Fatalf("go-car v2 read %d blocks, we read %d", i, len(got))
				}
				break
			}
			if err != nil {
				t.Fatalf("we accept, go-car v2 rejects block %d: %v", i, err)
			}
			if i >= len(got) || !blk.Cid().Equals(got[i].CID) || !bytes.Equal(blk.RawData(), got[i].Data) {
				t.Fatalf("block %d differs from go-car v2", i)
			}
		}
	})
}

func isAtproto(c cid.Cid) bool {
	p := c.Prefix()
	return p.Version == 1 && (p.Codec == cid.DagCBOR || p.Codec == cid.Raw) && p.MhType == multihash.SHA2_256 && p.MhLength == 32
}

func mustMarshal(roots []cid.Cid, blocks ...car.Block) []byte {
	b, err := car.Marshal(roots, blocks...)
	if err != nil {
		panic(err)
	}
	return b
}
