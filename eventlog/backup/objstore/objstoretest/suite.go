package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/pdslog/pdslog/eventlog/backup/objstore"
)

// Run runs the conformance suite; newStore returns a new, empty store for
// each subtest.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"Range", testRange},
		{"ListOrder", testListOrder},
		{"ListStop", testListStop},
		{"BadKeys", testBadKeys},
		{"FailedPutLeavesNothing", testFailedPut},
		{"Concurrent", testConcurrent},
		{"Delete", testDelete},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func put(t *testing.T, s objstore.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, s objstore.Store, key string) []byte {
	t.Helper()
	b, err := objstore.ReadAll(context.Background(), s, key, 64<<20)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

func keys(t *testing.T, s objstore.Store, prefix, after string) []string {
	t.Helper()
	var out []string
	if err := s.List(context.Background(), prefix, after, func(o objstore.Object) error {
		out = append(out, o.Key)
		return nil
	}); err != nil {
		t.Fatalf("list %q after %q: %v", prefix, after, err)
	}
	return out
}

func testPutGet(t *testing.T, s objstore.Store) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB
	put(t, s, "a/b/c.seg", big)
	put(t, s, "empty", nil)
	if got := get(t, s, "a/b/c.seg"); !bytes.Equal(got, big) {
		t.Fatalf("got %d bytes back, put %d", len(got), len(big))
	}
	if got := get(t, s, "empty"); len(got) != 0 {
		t.Fatalf("empty object: %d bytes", len(got))
	}
	// Put reads from the reader's start whatever its position.
	r := bytes.NewReader([]byte("xyz"))
	_, _ = r.Seek(2, io.SeekStart)
	if err := s.Put(context.Background(), "seeked", r, 3); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "seeked"); string(got) != "xyz" {
		t.Fatalf("seeked reader: %q", got)
	}
	var sizes []int64
	_ = s.List(context.Background(), "a/", "", func(o objstore.Object) error {
		sizes = append(sizes, o.Size)
		return nil
	})
	if !slices.Equal(sizes, []int64{int64(len(big))}) {
		t.Fatalf("listed sizes %v", sizes)
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	put(t, s, "m.json", []byte("one"))
	put(t, s, "m.json", []byte("two, longer"))
	if got := get(t, s, "m.json"); string(got) != "two, longer" {
		t.Fatalf("got %q", got)
	}
	if k := keys(t, s, "", ""); !slices.Equal(k, []string{"m.json"}) {
		t.Fatalf("keys %v", k)
	}
}

func testMissing(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("get: %v", err)
	}
	if _, err := s.GetRange(ctx, "nope", 0, 10); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("get range: %v", err)
	}
	if err := s.Delete(ctx, "nope"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if k := keys(t, s, "nothing/", ""); len(k) != 0 {
		t.Fatalf("keys %v", k)
	}
}

func testRange(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	put(t, s, "r", []byte("0123456789"))
	for _, tc := range []struct {
		off, n int64
		want   string
	}{{0, 4, "0123"}, {3, 4, "3456"}, {8, 10, "89"}, {10, 5, ""}, {0, 0, ""}} {
		got, err := s.GetRange(ctx, "r", tc.off, tc.n)
		if err != nil || string(got) != tc.want {
			t.Fatalf("range %d+%d: %q %v, want %q", tc.off, tc.n, got, err, tc.want)
		}
	}
}

func testListOrder(t *testing.T, s objstore.Store) {
	// '-' (0x2d) sorts before '/' (0x2f): byte order, not a directory walk.
	// No key is a '/'-prefix of another (a directory backend cannot hold
	// both; the backup's layout never makes such keys).
	all := []string{"g/a-b", "g/a/c", "g/b", "g/00000000000000000010-x", "g/00000000000000000009-y", "h/z", "gz"}
	for _, k := range all {
		put(t, s, k, []byte(k))
	}
	want := []string{"g/00000000000000000009-y", "g/00000000000000000010-x", "g/a-b", "g/a/c", "g/b"}
	if got := keys(t, s, "g/", ""); !slices.Equal(got, want) {
		t.Fatalf("list g/: %v\nwant %v", got, want)
	}
	if got := keys(t, s, "g/", "g/a-b"); !slices.Equal(got, want[3:]) {
		t.Fatalf("list g/ after g/a-b: %v", got)
	}
	if got := keys(t, s, "g", ""); !slices.Equal(got, append(slices.Clone(want), "gz")) {
		t.Fatalf("list g: %v", got)
	}
	if got := keys(t, s, "", "h"); !slices.Equal(got, []string{"h/z"}) {
		t.Fatalf("list after h: %v", got)
	}
}

func testListStop(t *testing.T, s objstore.Store) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("k/%d", i), []byte{byte(i)})
	}
	var seen []string
	err := s.List(context.Background(), "k/", "", func(o objstore.Object) error {
		seen = append(seen, o.Key)
		if len(seen) == 2 {
			return objstore.ErrStop
		}
		return nil
	})
	if err != nil || len(seen) != 2 {
		t.Fatalf("stop: %v %v", seen, err)
	}
	boom := errors.New("boom")
	if err := s.List(context.Background(), "k/", "", func(objstore.Object) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("callback error: %v", err)
	}
}

func testBadKeys(t *testing.T, s objstore.Store) {
	for _, k := range []string{"", "/abs", "a//b", "a/../b", "./a", "a/", "a\x00b", `a\b`} {
		if err := s.Put(context.Background(), k, bytes.NewReader(nil), 0); !errors.Is(err, objstore.ErrBadKey) {
			t.Errorf("put %q: %v", k, err)
		}
	}
}

// failingReader gives some bytes, then fails.
type failingReader struct{ *bytes.Reader }

func (f failingReader) Read(p []byte) (int, error) {
	if f.Len() < 100 {
		return 0, errors.New("disk read error")
	}
	return f.Reader.Read(p[:min(len(p), f.Len()-99)])
}

func testFailedPut(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 1000)
	if err := s.Put(ctx, "f", failingReader{bytes.NewReader(data)}, int64(len(data))); err == nil {
		t.Fatal("a failing reader's put succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, "c", bytes.NewReader(data), int64(len(data))); err == nil {
		t.Fatal("a cancelled put succeeded")
	}
	if k := keys(t, s, "", ""); len(k) != 0 {
		t.Fatalf("failed puts left %v", k)
	}
}

func testConcurrent(t *testing.T, s objstore.Store) {
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			b := bytes.Repeat([]byte{byte(i)}, 10_000+i)
			if err := s.Put(context.Background(), fmt.Sprintf("c/%02d", i), bytes.NewReader(b), int64(len(b))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if k := keys(t, s, "c/", ""); len(k) != 16 {
		t.Fatalf("%d keys", len(k))
	}
	for i := range 16 {
		if b := get(t, s, fmt.Sprintf("c/%02d", i)); len(b) != 10_000+i || b[0] != byte(i) {
			t.Fatalf("object %d: %d bytes", i, len(b))
		}
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	put(t, s, "d/1", []byte("1"))
	put(t, s, "d/2", []byte("2"))
	if err := s.Delete(context.Background(), "d/1"); err != nil {
		t.Fatal(err)
	}
	if k := keys(t, s, "d/", ""); !slices.Equal(k, []string{"d/2"}) {
		t.Fatalf("keys %v", k)
	}
	if _, err := s.Get(context.Background(), "d/1"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("deleted object: %v", err)
	}
}
