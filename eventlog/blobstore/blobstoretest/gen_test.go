package blobstoretest

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestGen: reading in any pieces, at any offset, gives the same bytes;
// chunks and seeds differ; FailAfter fails where it says.
func TestGen(t *testing.T) {
	const size = 3*genChunk + 123
	all := Bytes(7, size)
	var pieces bytes.Buffer
	g := NewGen(7, size)
	buf := make([]byte, 1000)
	for {
		n, err := g.Read(buf[:1+pieces.Len()%997])
		pieces.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(pieces.Bytes(), all) {
		t.Fatal("Read in pieces differs from ReadAt")
	}
	for _, off := range []int{0, 1, genChunk - 3, genChunk, 2*genChunk + 77, size - 5} {
		p := make([]byte, 200)
		n, err := NewGen(7, size).ReadAt(p, int64(off))
		if !bytes.Equal(p[:n], all[off:min(off+200, size)]) || (off+200 > size) != (err == io.EOF) {
			t.Fatalf("ReadAt(%d) = %d, %v", off, n, err)
		}
	}
	if bytes.Equal(all[:genChunk], all[genChunk:2*genChunk]) || bytes.Equal(all[:genChunk], Bytes(8, genChunk)) {
		t.Fatal("chunks or seeds repeat")
	}
	for _, r := range []io.Reader{FailAfter(ReaderOnly(NewGen(7, size)), 1000), FailAfter(NewGen(7, size), 1000)} {
		got, err := io.ReadAll(r)
		if !errors.Is(err, ErrBoom) || !bytes.Equal(got, all[:1000]) {
			t.Fatalf("FailAfter(1000): %d bytes, %v", len(got), err)
		}
	}
}
