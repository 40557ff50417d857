package blobstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog/blobstore"
)

// LargeSize is the size of the suite's large blob: more than two parts of
// the smallest multipart part S3 allows (5 MiB), so a backend under test
// with that part size uploads it in three parts, the last a short one.
const LargeSize = 2*5<<20 + 12345

// Test accounts: a did:plc, and did:webs whose DIDs have a port ('%')
// and upper-case letters, which a disk layout must keep apart.
var (
	Alice = syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	Bob   = syntax.DID("did:plc:z72i7hdynmk6r22z27h6tvur")
	Web   = syntax.DID("did:web:localhost%3A2583")
	Upper = syntax.DID("did:web:Example.COM")
	upper = syntax.DID("did:web:example.com")
)

// Run runs the conformance suite. newStore returns a new, empty store for
// each subtest (it may register its cleanup with t).
func Run(t *testing.T, newStore func(t *testing.T) blobstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blobstore.Store)
	}{
		{"PutOpenStat", testPutOpenStat},
		{"ReaderPosition", testReaderPosition},
		{"Missing", testMissing},
		{"Ranges", testRanges},
		{"Large", testLarge},
		{"RePutIsNoop", testRePut},
		{"ConcurrentSamePut", testConcurrentSame},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ReaderFails", testReaderFails},
		{"SizeMismatch", testSizeMismatch},
		{"RetryAfterFailure", testRetry},
		{"Cancel", testCancel},
		{"Delete", testDelete},
		{"List", testList},
		{"Accounts", testAccounts},
		{"DeleteAccount", testDeleteAccount},
		{"BadKeys", testBadKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// source is a way the bytes of a Put arrive.
type source struct {
	name string
	open func(t *testing.T, data []byte) io.Reader
}

var sources = []source{
	{"stream", func(t *testing.T, data []byte) io.Reader { return ReaderOnly(bytes.NewReader(data)) }},
	{"file", func(t *testing.T, data []byte) io.Reader { return tempFile(t, nil, data) }},
}

// tempFile returns an open file holding prefix then data, positioned at
// data, as an upload's temp file is.
func tempFile(t *testing.T, prefix, data []byte) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "upload"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(append(slices.Clip(prefix), data...)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(int64(len(prefix)), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	return f
}

func put(t *testing.T, s blobstore.Store, did syntax.DID, data []byte) cid.Cid {
	t.Helper()
	c := CID(data)
	if err := s.Put(t.Context(), did, c, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%s, %d bytes): %v", did, len(data), err)
	}
	return c
}

func read(t *testing.T, s blobstore.Store, did syntax.DID, c cid.Cid, off, n int64) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), did, c, off, n)
	if err != nil {
		t.Fatalf("Open(%s, %s, %d, %d): %v", did, c, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s [%d,+%d): %v", c, off, n, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return b
}

func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (sha256 %x), want %d (sha256 %x)", what, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func list(t *testing.T, s blobstore.Store, did syntax.DID) []cid.Cid {
	t.Helper()
	var all []cid.Cid
	after := cid.Undef
	for {
		page, err := s.List(t.Context(), did, after, 1000)
		if err != nil {
			t.Fatalf("List(%s): %v", did, err)
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all
		}
		after = page[len(page)-1]
	}
}

func wantList(t *testing.T, s blobstore.Store, did syntax.DID, want ...cid.Cid) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b cid.Cid) int { return strings.Compare(a.String(), b.String()) })
	got := list(t, s, did)
	if !slices.EqualFunc(got, want, cid.Cid.Equals) {
		t.Fatalf("List(%s) = %v, want %v", did, got, want)
	}
}

// wantAbsent checks that c is invisible in every way.
func wantAbsent(t *testing.T, s blobstore.Store, did syntax.DID, c cid.Cid) {
	t.Helper()
	if n, err := s.Stat(t.Context(), did, c); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat(%s, %s) = %d, %v; want ErrNotFound", did, c, n, err)
	}
	if rc, err := s.Open(t.Context(), did, c, 0, -1); !errors.Is(err, blobstore.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Fatalf("Open(%s, %s) error = %v; want ErrNotFound", did, c, err)
	}
	if slices.ContainsFunc(list(t, s, did), c.Equals) {
		t.Fatalf("List(%s) shows %s", did, c)
	}
}

func testPutOpenStat(t *testing.T, s blobstore.Store) {
	var cids []cid.Cid
	for i, size := range []int{0, 1, 1000, 100_000} {
		for j, src := range sources {
			data := Bytes(uint64(10*i+j), size)
			c := CID(data)
			if err := s.Put(t.Context(), Alice, c, src.open(t, data), int64(size)); err != nil {
				t.Fatalf("Put %d bytes from a %s: %v", size, src.name, err)
			}
			if !slices.ContainsFunc(cids, c.Equals) { // the empty blob comes twice
				cids = append(cids, c)
			}
			n, err := s.Stat(t.Context(), Alice, c)
			if err != nil || n != int64(size) {
				t.Fatalf("Stat = %d, %v; want %d", n, err, size)
			}
			wantBytes(t, fmt.Sprintf("%d bytes from a %s", size, src.name), read(t, s, Alice, c, 0, -1), data)
		}
	}
	wantList(t, s, Alice, cids...)
}

// testReaderPosition: Put reads from the reader's position, not its start.
func testReaderPosition(t *testing.T, s blobstore.Store) {
	data := Bytes(1, 5000)
	f := tempFile(t, []byte("not part of the blob"), data)
	c := CID(data)
	if err := s.Put(t.Context(), Alice, c, f, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "blob from a file at an offset", read(t, s, Alice, c, 0, -1), data)
}

func testMissing(t *testing.T, s blobstore.Store) {
	c := CID([]byte("never stored"))
	wantAbsent(t, s, Alice, c)
	if err := s.Delete(t.Context(), Alice, c); err != nil {
		t.Fatalf("Delete of a missing blob: %v", err)
	}
	if got, err := s.List(t.Context(), Bob, cid.Undef, 10); err != nil || len(got) != 0 {
		t.Fatalf("List of an account with no blobs = %v, %v", got, err)
	}
}

func testRanges(t *testing.T, s blobstore.Store) {
	const size = 100_000
	data := Bytes(2, size)
	c := put(t, s, Alice, data)
	for _, r := range []struct {
		name     string
		off, n   int64
		from, to int64 // want data[from:to]
	}{
		{"whole", 0, -1, 0, size},
		{"whole, n=size", 0, size, 0, size},
		{"start", 0, 10, 0, 10},
		{"middle", 40_000, 1234, 40_000, 41_234},
		{"middle to end", 40_000, -1, 40_000, size},
		{"last byte", size - 1, 1, size - 1, size},
		{"end, n too long", size - 10, 100, size - 10, size},
		{"at the end", size, -1, size, size},
		{"at the end, n>0", size, 5, size, size},
		{"n=0", 10, 0, 10, 10},
	} {
		wantBytes(t, r.name, read(t, s, Alice, c, r.off, r.n), data[r.from:r.to])
	}
	for _, r := range []struct{ off, n int64 }{{size + 1, -1}, {size + 1, 10}, {-1, 10}} {
		rc, err := s.Open(t.Context(), Alice, c, r.off, r.n)
		if !errors.Is(err, blobstore.ErrRange) {
			if err == nil {
				rc.Close()
			}
			t.Fatalf("Open(off=%d, n=%d) error = %v; want ErrRange", r.off, r.n, err)
		}
	}
	// An empty blob: the whole of it, and offset 0 (its end) with n > 0.
	e := put(t, s, Alice, nil)
	wantBytes(t, "empty blob", read(t, s, Alice, e, 0, -1), nil)
	wantBytes(t, "empty blob, n>0", read(t, s, Alice, e, 0, 10), nil)
	if _, err := s.Open(t.Context(), Alice, e, 1, -1); !errors.Is(err, blobstore.ErrRange) {
		t.Fatalf("Open(empty, off=1) error = %v; want ErrRange", err)
	}
}

func testLarge(t *testing.T, s blobstore.Store) {
	data := Bytes(3, LargeSize)
	c := CID(data)
	for _, src := range append(sources, source{"generator", func(*testing.T, []byte) io.Reader { return NewGen(3, LargeSize) }}) {
		if err := s.Delete(t.Context(), Alice, c); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(t.Context(), Alice, c, src.open(t, data), LargeSize); err != nil {
			t.Fatalf("Put %d bytes from a %s: %v", LargeSize, src.name, err)
		}
		if n, err := s.Stat(t.Context(), Alice, c); err != nil || n != LargeSize {
			t.Fatalf("Stat = %d, %v; want %d", n, err, LargeSize)
		}
		wantBytes(t, "large blob from a "+src.name, read(t, s, Alice, c, 0, -1), data)
	}
	const part = 5 << 20
	wantBytes(t, "across the first part boundary", read(t, s, Alice, c, part-100, 200), data[part-100:part+100])
	wantBytes(t, "the last part", read(t, s, Alice, c, 2*part, -1), data[2*part:])
	wantList(t, s, Alice, c)
}

func testRePut(t *testing.T, s blobstore.Store) {
	data := Bytes(4, 3000)
	c := put(t, s, Alice, data)
	// Storing it again must not read the reader (it fails if read).
	if err := s.Put(t.Context(), Alice, c, unreadable{}, int64(len(data))); err != nil {
		t.Fatalf("Put of a stored blob: %v", err)
	}
	wantBytes(t, "after re-put", read(t, s, Alice, c, 0, -1), data)
	wantList(t, s, Alice, c)
}

func testConcurrentSame(t *testing.T, s blobstore.Store) {
	data := Bytes(5, 200_000)
	c := CID(data)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			var r io.Reader = bytes.NewReader(data)
			if i%2 == 0 {
				r = ReaderOnly(r)
			}
			errs[i] = s.Put(t.Context(), Alice, c, r, int64(len(data)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	wantBytes(t, "after concurrent puts", read(t, s, Alice, c, 0, -1), data)
	wantList(t, s, Alice, c)
}

func testConcurrentPuts(t *testing.T, s blobstore.Store) {
	var wg sync.WaitGroup
	blobs := make([][]byte, 16)
	errs := make([]error, len(blobs))
	for i := range blobs {
		blobs[i] = Bytes(uint64(100+i), 10_000+i)
		wg.Go(func() {
			did := Alice
			if i%2 == 1 {
				did = Bob
			}
			errs[i] = s.Put(t.Context(), did, CID(blobs[i]), bytes.NewReader(blobs[i]), int64(len(blobs[i])))
		})
	}
	wg.Wait()
	var alice, bob []cid.Cid
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		did := Alice
		if i%2 == 1 {
			did = Bob
		}
		wantBytes(t, fmt.Sprintf("blob %d", i), read(t, s, did, CID(blobs[i]), 0, -1), blobs[i])
		if did == Alice {
			alice = append(alice, CID(blobs[i]))
		} else {
			bob = append(bob, CID(blobs[i]))
		}
	}
	wantList(t, s, Alice, alice...)
	wantList(t, s, Bob, bob...)
}

// failing are the Puts whose reader fails halfway.
func failing(size int) []source {
	return []source{
		{"stream", func(t *testing.T, data []byte) io.Reader {
			return FailAfter(ReaderOnly(bytes.NewReader(data)), int64(size/2))
		}},
		{"file", func(t *testing.T, data []byte) io.Reader {
			return FailAfter(bytes.NewReader(data), int64(size/2))
		}},
	}
}

func testReaderFails(t *testing.T, s blobstore.Store) {
	for _, size := range []int{100_000, LargeSize} {
		data := Bytes(6, size)
		c := CID(data)
		for _, src := range failing(size) {
			err := s.Put(t.Context(), Alice, c, src.open(t, data), int64(size))
			if !errors.Is(err, ErrBoom) {
				t.Fatalf("Put of %d bytes from a %s failing halfway: error %v, want ErrBoom", size, src.name, err)
			}
			wantAbsent(t, s, Alice, c)
		}
	}
}

func testSizeMismatch(t *testing.T, s blobstore.Store) {
	for _, size := range []int{100_000, LargeSize} {
		data := Bytes(7, size)
		c := CID(data)
		for _, src := range sources {
			for _, claim := range []int{size + 1, size - 1} {
				err := s.Put(t.Context(), Alice, c, src.open(t, data), int64(claim))
				if !errors.Is(err, blobstore.ErrSize) {
					t.Fatalf("Put of %d bytes from a %s claiming %d: error %v, want ErrSize", size, src.name, claim, err)
				}
				wantAbsent(t, s, Alice, c)
			}
		}
	}
	if err := s.Put(t.Context(), Alice, CID(nil), bytes.NewReader(nil), -1); err == nil {
		t.Fatal("Put with a negative size succeeded")
	}
}

func testRetry(t *testing.T, s blobstore.Store) {
	for _, size := range []int{100_000, LargeSize} {
		data := Bytes(8, size)
		c := CID(data)
		if err := s.Put(t.Context(), Alice, c, FailAfter(ReaderOnly(bytes.NewReader(data)), int64(size-1)), int64(size)); !errors.Is(err, ErrBoom) {
			t.Fatalf("failing Put: %v", err)
		}
		if err := s.Put(t.Context(), Alice, c, ReaderOnly(bytes.NewReader(data)), int64(size)); err != nil {
			t.Fatalf("retried Put: %v", err)
		}
		wantBytes(t, "retried blob", read(t, s, Alice, c, 0, -1), data)
	}
}

// cancelAt cancels a context once n bytes were read.
type cancelAt struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAt) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	} else if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	return k, err
}

func testCancel(t *testing.T, s blobstore.Store) {
	data := Bytes(9, 300_000)
	c := CID(data)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, Alice, c, bytes.NewReader(data), int64(len(data))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v", err)
	}
	wantAbsent(t, s, Alice, c)

	for _, size := range []int{len(data), LargeSize} {
		big := Bytes(9, size)
		bc := CID(big)
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelAt{r: bytes.NewReader(big), n: int64(size / 2), cancel: cancel}
		if err := s.Put(ctx, Alice, bc, r, int64(size)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put of %d bytes cancelled halfway: %v", size, err)
		}
		cancel()
		wantAbsent(t, s, Alice, bc)
	}

	put(t, s, Alice, data)
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if rc, err := s.Open(ctx, Alice, c, 0, -1); !errors.Is(err, context.Canceled) {
		if err == nil {
			rc.Close()
		}
		t.Fatalf("Open with a cancelled context: %v", err)
	}
	if _, err := s.Stat(ctx, Alice, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stat with a cancelled context: %v", err)
	}
	if _, err := s.List(ctx, Alice, cid.Undef, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("List with a cancelled context: %v", err)
	}
	if err := s.Delete(ctx, Alice, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete with a cancelled context: %v", err)
	}
	if err := s.DeleteAccount(ctx, Alice); !errors.Is(err, context.Canceled) {
		t.Fatalf("DeleteAccount with a cancelled context: %v", err)
	}
	wantBytes(t, "after cancelled deletes", read(t, s, Alice, c, 0, -1), data)

	// A reader stops once its context is done.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	rc, err := s.Open(ctx, Alice, c, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if n, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading after cancel: %d bytes, error %v; want context.Canceled", n, err)
	}
}

func testDelete(t *testing.T, s blobstore.Store) {
	a := put(t, s, Alice, Bytes(10, 1000))
	b := put(t, s, Alice, Bytes(11, 1000))
	if err := s.Delete(t.Context(), Alice, a); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, s, Alice, a)
	if err := s.Delete(t.Context(), Alice, a); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	wantList(t, s, Alice, b)
	// Stored again after its deletion.
	put(t, s, Alice, Bytes(10, 1000))
	wantList(t, s, Alice, a, b)
}

func testList(t *testing.T, s blobstore.Store) {
	var all []cid.Cid
	for i := range 25 {
		all = append(all, put(t, s, Alice, Bytes(uint64(200+i), 10+i)))
	}
	slices.SortFunc(all, func(a, b cid.Cid) int { return strings.Compare(a.String(), b.String()) })
	var got []cid.Cid
	after := cid.Undef
	for pages := 0; ; pages++ {
		page, err := s.List(t.Context(), Alice, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("page of %d, limit 7", len(page))
		}
		got = append(got, page...)
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1]
		if pages > 10 {
			t.Fatal("List does not end")
		}
	}
	if !slices.EqualFunc(got, all, cid.Cid.Equals) {
		t.Fatalf("paged List = %v, want %v", got, all)
	}
	// After a CID the account does not have: the next ones.
	missing := CID([]byte("not stored"))
	i, _ := slices.BinarySearchFunc(all, missing, func(a, b cid.Cid) int { return strings.Compare(a.String(), b.String()) })
	page, err := s.List(t.Context(), Alice, missing, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := all[i:min(i+3, len(all))]
	if !slices.EqualFunc(page, want, cid.Cid.Equals) {
		t.Fatalf("List after %s = %v, want %v", missing, page, want)
	}
	if page, err := s.List(t.Context(), Alice, all[len(all)-1], 3); err != nil || len(page) != 0 {
		t.Fatalf("List after the last = %v, %v", page, err)
	}
	if _, err := s.List(t.Context(), Alice, cid.Undef, 0); err == nil {
		t.Fatal("List with limit 0 succeeded")
	}
}

// testAccounts: the same bytes under two accounts are two blobs; DIDs that
// differ only in case or by escapes stay apart.
func testAccounts(t *testing.T, s blobstore.Store) {
	data := Bytes(12, 5000)
	dids := []syntax.DID{Alice, Bob, Web, Upper, upper}
	for i, did := range dids {
		put(t, s, did, data)
		put(t, s, did, Bytes(uint64(300+i), 100))
	}
	c := CID(data)
	if err := s.Delete(t.Context(), Alice, c); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, s, Alice, c)
	for i, did := range dids {
		own := CID(Bytes(uint64(300+i), 100))
		if did == Alice {
			wantList(t, s, did, own)
			continue
		}
		wantBytes(t, "shared bytes under "+string(did), read(t, s, did, c, 0, -1), data)
		wantList(t, s, did, c, own)
	}
}

func testDeleteAccount(t *testing.T, s blobstore.Store) {
	var alice []cid.Cid
	for i := range 5 {
		alice = append(alice, put(t, s, Alice, Bytes(uint64(400+i), 1000*i)))
	}
	large := put(t, s, Alice, Bytes(13, LargeSize))
	bob := put(t, s, Bob, Bytes(400, 0))
	if err := s.DeleteAccount(t.Context(), Alice); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(alice, large) {
		wantAbsent(t, s, Alice, c)
	}
	wantList(t, s, Alice)
	wantList(t, s, Bob, bob)
	wantBytes(t, "other account's blob", read(t, s, Bob, bob, 0, -1), nil)
	if err := s.DeleteAccount(t.Context(), Alice); err != nil {
		t.Fatalf("second DeleteAccount: %v", err)
	}
	if err := s.DeleteAccount(t.Context(), Web); err != nil {
		t.Fatalf("DeleteAccount of an account with no blobs: %v", err)
	}
	c := put(t, s, Alice, Bytes(14, 100))
	wantList(t, s, Alice, c)
}

func testBadKeys(t *testing.T, s blobstore.Store) {
	ctx := t.Context()
	good := CID([]byte("x"))
	for _, k := range []struct {
		did syntax.DID
		c   cid.Cid
	}{{"", good}, {"not-a-did", good}, {"did:plc:../../etc", good}, {Alice, cid.Undef}} {
		if err := s.Put(ctx, k.did, k.c, strings.NewReader("x"), 1); err == nil {
			t.Fatalf("Put(%q, %v) succeeded", k.did, k.c)
		}
		if rc, err := s.Open(ctx, k.did, k.c, 0, -1); err == nil || errors.Is(err, blobstore.ErrNotFound) {
			if err == nil {
				rc.Close()
			}
			t.Fatalf("Open(%q, %v) error = %v; want a bad-key error", k.did, k.c, err)
		}
		if _, err := s.Stat(ctx, k.did, k.c); err == nil || errors.Is(err, blobstore.ErrNotFound) {
			t.Fatalf("Stat(%q, %v) error = %v; want a bad-key error", k.did, k.c, err)
		}
		if err := s.Delete(ctx, k.did, k.c); err == nil {
			t.Fatalf("Delete(%q, %v) succeeded", k.did, k.c)
		}
		if k.c.Defined() {
			if _, err := s.List(ctx, k.did, cid.Undef, 10); err == nil {
				t.Fatalf("List(%q) succeeded", k.did)
			}
			if err := s.DeleteAccount(ctx, k.did); err == nil {
				t.Fatalf("DeleteAccount(%q) succeeded", k.did)
			}
		}
	}
}
