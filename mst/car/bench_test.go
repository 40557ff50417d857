package car_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/pdslog/pdslog/mst/car"
)

// BenchmarkWriteRead measures writing a CAR to memory and reading it back
// (verifying every block), reported as CAR bytes per second.
func BenchmarkWriteRead(b *testing.B) {
	for _, size := range []int{256, 4 << 10, 64 << 10} {
		n := (4 << 20) / size // ~4 MiB of block data per iteration
		blocks := randomBlocks(rand.New(rand.NewPCG(41, 42)), n, size)
		root := blocks[0].CID
		var buf bytes.Buffer
		for _, verify := range []bool{true, false} {
			b.Run(fmt.Sprintf("block=%d/verify=%v", size, verify), func(b *testing.B) {
				opts := &car.ReaderOptions{SkipVerify: !verify}
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					w, err := car.NewWriter(&buf, root)
					if err != nil {
						b.Fatal(err)
					}
					for _, blk := range blocks {
						if err := w.Put(blk.CID, blk.Data); err != nil {
							b.Fatal(err)
						}
					}
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
					b.SetBytes(int64(buf.Len()))
					r, err := car.NewReader(&buf, opts)
					if err != nil {
						b.Fatal(err)
					}
					for {
						if _, _, err := r.Next(); err == io.EOF {
							break
						} else if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkWrite measures the Writer alone into io.Discard.
func BenchmarkWrite(b *testing.B) {
	blocks := randomBlocks(rand.New(rand.NewPCG(43, 44)), 1024, 4<<10)
	var total int64
	for _, blk := range blocks {
		total += int64(blk.CID.ByteLen() + len(blk.Data))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		w, err := car.NewWriter(io.Discard, blocks[0].CID)
		if err != nil {
			b.Fatal(err)
		}
		for _, blk := range blocks {
			if err := w.Put(blk.CID, blk.Data); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
