package blobstoretest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/eventlog/blobstore"
)

// BoundedMemory puts a size-byte blob generated as it is read (a plain
// stream, or an io.ReaderAt+io.Seeker when seekable) into s, reads it back
// whole, and fails if either allocated more than maxAlloc bytes of heap.
// The bytes allocated in the process during the call (runtime TotalAlloc)
// bound the heap growth from above, whatever the GC did meanwhile; the
// store must not be served by this process (an in-process server's
// allocations would count).
func BoundedMemory(t *testing.T, s blobstore.Store, size, maxAlloc int64, seekable bool) {
	t.Helper()
	ctx := t.Context()
	seed := uint64(size) ^ 0x5eed
	c := GenCID(seed, size)
	var src io.Reader = NewGen(seed, size)
	if !seekable {
		src = ReaderOnly(src)
	}
	if err := s.Delete(ctx, Alice, c); err != nil {
		t.Fatal(err)
	}

	putAlloc := allocated(func() {
		if err := s.Put(ctx, Alice, c, src, size); err != nil {
			t.Fatalf("Put: %v", err)
		}
	})

	got := sha256.New()
	var n int64
	openAlloc := allocated(func() {
		rc, err := s.Open(ctx, Alice, c, 0, -1)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer rc.Close()
		// A fixed buffer: io.Copy into the hash would allocate one anyway.
		buf := make([]byte, 64<<10)
		n, err = io.CopyBuffer(onlyWriter{got}, ReaderOnly(rc), buf)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
	})
	want, err := multihash.Decode(c.Hash()) // GenCID hashed the bytes
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), want.Digest) {
		t.Fatalf("read back %d bytes with sha256 %x, want %d with %x", n, got.Sum(nil), size, want.Digest)
	}
	t.Logf("%d MiB blob (seekable source: %v): Put allocated %.2f MiB, Open+read %.2f MiB (limit %.2f MiB)",
		size>>20, seekable, mib(putAlloc), mib(openAlloc), mib(maxAlloc))
	if putAlloc > maxAlloc {
		t.Errorf("Put of %d MiB allocated %.2f MiB, more than %.2f MiB", size>>20, mib(putAlloc), mib(maxAlloc))
	}
	if openAlloc > maxAlloc {
		t.Errorf("Open and read of %d MiB allocated %.2f MiB, more than %.2f MiB", size>>20, mib(openAlloc), mib(maxAlloc))
	}
	if err := s.Delete(ctx, Alice, c); err != nil {
		t.Fatal(err)
	}
}

type onlyWriter struct{ w io.Writer }

func (w onlyWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// allocated returns the bytes of heap the process allocated while fn ran.
func allocated(fn func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc)
}

// BenchPut measures Put of size-byte blobs from a file (as uploads arrive),
// each under a new CID (the stores trust the CID, so it is not the bytes'
// hash here). Each blob is deleted again outside the timer.
func BenchPut(b *testing.B, s blobstore.Store, size int64) {
	f := benchFile(b, size)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c := benchCID(i)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		if err := s.Put(b.Context(), Alice, c, f, size); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(b.Context(), Alice, c); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchOpen measures Open and reading a whole size-byte blob.
func BenchOpen(b *testing.B, s blobstore.Store, size int64) {
	f := benchFile(b, size)
	c := benchCID(-1)
	if err := s.Put(b.Context(), Alice, c, f, size); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		rc, err := s.Open(b.Context(), Alice, c, 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, ReaderOnly(rc), buf)
		rc.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}

func benchFile(b *testing.B, size int64) *os.File {
	f, err := os.Create(filepath.Join(b.TempDir(), "blob"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	if _, err := io.Copy(f, ReaderOnly(NewGen(1, size))); err != nil {
		b.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		b.Fatal(err)
	}
	return f
}

func benchCID(i int) cid.Cid {
	return CID(binary.BigEndian.AppendUint64([]byte("bench"), uint64(i)))
}
