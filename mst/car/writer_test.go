package car_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/mst/car"
)

// countingWriter counts the bytes that reach it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// The Writer streams: after every Put, everything but at most one buffer's
// worth has reached the underlying writer, and Put allocates nothing, so an
// export of any size runs in constant memory.
func TestWriterStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	blocks := randomBlocks(rng, 200, 8<<10)
	blocks = append(blocks, cborBlock(make([]byte, 1<<20))) // bigger than the buffer
	blocks = append(blocks, randomBlocks(rng, 50, 100)...)

	var cw countingWriter
	root := blocks[0].CID
	w, err := car.NewWriter(&cw, root)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i, b := range blocks {
		if err := w.Put(b.CID, b.Data); err != nil {
			t.Fatal(err)
		}
		total += int64(b.CID.ByteLen() + len(b.Data))
		if held := w.BytesWritten() - cw.n; held < 0 || held > car.BufferSize {
			t.Fatalf("after block %d: %d bytes held back, buffer is %d", i, held, car.BufferSize)
		}
	}
	if w.BytesWritten() <= total {
		t.Fatalf("BytesWritten %d, blocks alone are %d", w.BytesWritten(), total)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if cw.n != w.BytesWritten() || w.Blocks() != int64(len(blocks)) {
		t.Fatalf("after Close: %d bytes reached the writer, BytesWritten %d, Blocks %d", cw.n, w.BytesWritten(), w.Blocks())
	}
	m, err := car.Marshal([]cid.Cid{root}, blocks...)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(m)) != cw.n {
		t.Fatalf("streamed %d bytes, Marshal %d", cw.n, len(m))
	}

	small, large := blocks[1], blocks[200]
	for name, b := range map[string]car.Block{"small": small, "1 MiB": large} {
		if allocs := testing.AllocsPerRun(100, func() {
			if err := w.Put(b.CID, b.Data); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("Put of a %s block: %v allocations, want 0", name, allocs)
		}
	}
}

type failingWriter struct {
	budget int
	err    error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.budget {
		n := w.budget
		w.budget = 0
		return n, w.err
	}
	w.budget -= len(p)
	return len(p), nil
}

// A write error is returned (wrapped in ErrWrite) and sticks.
func TestWriterError(t *testing.T) {
	boom := errors.New("disk full")
	blocks := randomBlocks(rand.New(rand.NewPCG(13, 14)), 100, 4000)
	w, err := car.NewWriter(&failingWriter{budget: 50_000, err: boom})
	if err != nil {
		t.Fatal(err)
	}
	var first error
	for _, b := range blocks {
		if err := w.Put(b.CID, b.Data); err != nil {
			first = err
			break
		}
	}
	if !errors.Is(first, car.ErrWrite) || !errors.Is(first, boom) {
		t.Fatalf("Put: %v, want ErrWrite wrapping the writer's error", first)
	}
	if err := w.Put(blocks[0].CID, blocks[0].Data); err != first {
		t.Errorf("Put after failure: %v", err)
	}
	if err := w.Flush(); err != first {
		t.Errorf("Flush after failure: %v", err)
	}

	// The header sits in the buffer, so a writer that fails at once reports
	// it on Flush/Close.
	w, err = car.NewWriter(&failingWriter{err: boom}, blocks[0].CID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close: %v", err)
	}
}

func TestWriterRejectsUndefinedCIDs(t *testing.T) {
	if _, err := car.NewWriter(&bytes.Buffer{}, cid.Undef); !errors.Is(err, car.ErrInvalidCID) {
		t.Errorf("NewWriter(Undef root): %v", err)
	}
	w, err := car.NewWriter(&bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Put(cid.Undef, []byte("x")); !errors.Is(err, car.ErrInvalidCID) {
		t.Errorf("Put(Undef): %v", err)
	}
	if err := w.Put(cborBlock([]byte("x")).CID, []byte("x")); err != nil {
		t.Errorf("Put after rejected Put: %v", err)
	}
	if _, err := car.Marshal([]cid.Cid{cid.Undef}); !errors.Is(err, car.ErrInvalidCID) {
		t.Errorf("Marshal(Undef root): %v", err)
	}
	if _, err := car.Marshal(nil, car.Block{Data: []byte("x")}); !errors.Is(err, car.ErrInvalidCID) {
		t.Errorf("Marshal(Undef block): %v", err)
	}
}
