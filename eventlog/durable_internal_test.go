package eventlog

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// proofCID returns a deterministic dag-cbor CID derived from s (the internal
// tests cannot import eventlogtest, which imports this package).
func proofCID(s string) cid.Cid {
	sum := sha256.Sum256([]byte(s))
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.DagCBOR, mh)
}

// syncGate is an errorfs injector that, while armed, holds every sync of a
// WAL file until released. It injects no errors.
type syncGate struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{} // closed when the first held sync arrives
	release chan struct{}
	once    sync.Once
}

func newSyncGate() *syncGate {
	return &syncGate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *syncGate) String() string { return "syncGate" }

func (g *syncGate) MaybeError(op errorfs.Op) error {
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
	default:
		return nil
	}
	if !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	g.mu.Lock()
	armed := g.armed
	g.mu.Unlock()
	if !armed {
		return nil
	}
	g.once.Do(func() { close(g.entered) })
	<-g.release
	return nil
}

func (g *syncGate) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

// waitVisibleInPebble polls Pebble itself (not the log) until key exists:
// the batch has been applied and published by Pebble. This observes a raw
// condition; it is not a sleep standing in for synchronisation.
func waitVisibleInPebble(t *testing.T, db *pebble.DB, key []byte) {
	t.Helper()
	for {
		_, closer, err := db.Get(key)
		if err == nil {
			closer.Close()
			return
		}
		if !errors.Is(err, pebble.ErrNotFound) {
			t.Fatal(err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("key %x never became visible in pebble", key)
		case <-time.After(50 * time.Microsecond):
		}
	}
}

func iterSeqs(t *testing.T, l *Log, after Seq) []Seq {
	t.Helper()
	it, err := l.Iter(t.Context(), after)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []Seq
	for it.Next() {
		seqs = append(seqs, it.Event().Seq)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// A reader must never observe an event whose WAL sync has not completed,
// even though Pebble already shows it to its own iterators.
func TestReaderNeverSeesUnsyncedEvent(t *testing.T) {
	for _, name := range []string{"os", "mem"} {
		t.Run(name, func(t *testing.T) {
			var base vfs.FS = vfs.Default
			dir := t.TempDir()
			if name == "mem" {
				base, dir = vfs.NewMem(), "/db"
			}
			testUnsyncedInvisible(t, base, dir)
		})
	}
}

func testUnsyncedInvisible(t *testing.T, base vfs.FS, dir string) {
	ctx := t.Context()
	gate := newSyncGate()
	l, err := Open(dir, &Options{FS: WrapFS(base, gate), SealKey: make([]byte, KeySize),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			close(gate.release) // never leave Pebble stuck in a sync
		}
		l.Close()
	}()

	did := syntax.DID("did:plc:durable")
	commit := func(n int, prev *Event) *Event {
		rev := syntax.TID("3l" + strings.Repeat(string(rune('a'+n)), 11))
		ev := &Event{Kind: KindCommit, DID: did, Commit: &Commit{Rev: rev,
			Commit: proofCID("c" + string(rev)), Data: proofCID("d" + string(rev))}}
		if prev != nil {
			ev.Commit.Since, ev.Commit.PrevData = prev.Commit.Rev, prev.Commit.Data
		}
		return ev
	}
	first := commit(0, nil)
	if seq, err := l.Append(ctx, first); err != nil || seq != 1 {
		t.Fatalf("first append: %d %v", seq, err)
	}

	gate.arm()
	type res struct {
		seq Seq
		err error
	}
	second := commit(1, first)
	done2 := make(chan res, 1)
	go func() {
		s, err := l.Append(context.Background(), second)
		done2 <- res{s, err}
	}()
	<-gate.entered                            // the WAL sync for seq 2 has started and is held
	waitVisibleInPebble(t, l.db, eventKey(2)) // and Pebble shows the batch to its readers

	// A second append is pipelined behind the held sync.
	third := &Event{Kind: KindIdentity, DID: did, Identity: &Identity{Handle: "durable.test"}}
	done3 := make(chan res, 1)
	go func() {
		s, err := l.Append(context.Background(), third)
		done3 <- res{s, err}
	}()
	waitVisibleInPebble(t, l.db, eventKey(3))

	// Pebble has both batches; the log must show neither.
	if h := l.Head(); h != 1 {
		t.Fatalf("Head() = %d before the WAL sync completed, want 1", h)
	}
	if got := iterSeqs(t, l, 0); len(got) != 1 || got[0] != 1 {
		t.Fatalf("Iter(0) yields seqs %v before the sync, want [1]", got)
	}
	if got := iterSeqs(t, l, 1); len(got) != 0 {
		t.Fatalf("Iter(1) yields seqs %v before the sync, want none", got)
	}
	if _, err := l.Iter(ctx, 2); !errors.Is(err, ErrFutureCursor) {
		t.Fatalf("Iter(2) before the sync: %v, want ErrFutureCursor", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	h, err := l.Wait(wctx, 1)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || h != 1 {
		t.Fatalf("Wait(1) before the sync = %d, %v; want 1, deadline exceeded", h, err)
	}
	// The repo head in Pebble is already seq 2's; RepoHead must wait for it
	// rather than reveal it.
	rctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	rh, err := l.RepoHead(rctx, did)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RepoHead before the sync = %+v, %v; want deadline exceeded", rh, err)
	}
	select {
	case r := <-done2:
		t.Fatalf("Append returned %d, %v before its WAL sync completed", r.seq, r.err)
	case r := <-done3:
		t.Fatalf("pipelined Append returned %d, %v before its WAL sync completed", r.seq, r.err)
	default:
	}

	// Let the sync through: both appends complete and become visible.
	close(gate.release)
	released = true
	if r := <-done2; r.err != nil || r.seq != 2 {
		t.Fatalf("second append: %d %v", r.seq, r.err)
	}
	if r := <-done3; r.err != nil || r.seq != 3 {
		t.Fatalf("third append: %d %v", r.seq, r.err)
	}
	if h, err := l.Wait(ctx, 2); err != nil || h != 3 {
		t.Fatalf("Wait(2) after the sync = %d, %v; want 3", h, err)
	}
	if got := iterSeqs(t, l, 0); len(got) != 3 || got[2] != 3 {
		t.Fatalf("Iter(0) after the sync yields %v", got)
	}
	rh, err = l.RepoHead(ctx, did)
	if err != nil || rh.Seq != 2 || rh.Rev != second.Commit.Rev {
		t.Fatalf("RepoHead after the sync = %+v, %v; want seq 2 rev %s", rh, err, second.Commit.Rev)
	}
}

// countingFS counts ReuseForWrite calls (Pebble recycling an old WAL).
type countingFS struct {
	vfs.FS
	reused atomic.Int64
}

func (fs *countingFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	fs.reused.Add(1)
	return fs.FS.ReuseForWrite(oldname, newname, category)
}

// The injecting filesystem the tests use must see the writes and syncs of
// recycled WAL files too, or faults and sync gates silently stop applying
// after the first WAL recycling (errorfs alone does not wrap them).
func TestWrapFSCoversRecycledWAL(t *testing.T) {
	base := &countingFS{FS: vfs.NewMem()}
	var syncs atomic.Int64
	counter := errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				syncs.Add(1)
			}
		}
		return nil
	})
	l, err := Open("/db", &Options{FS: WrapFS(base, counter), SealKey: make([]byte, KeySize),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const appends = 400
	data := make([]byte, 64<<10)
	for i := range appends {
		ev := &Event{Kind: KindPrivate, DID: "did:plc:recycle", Private: &Private{Type: "t", Data: data}}
		if _, err := l.Append(t.Context(), ev); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if base.reused.Load() == 0 {
		t.Fatalf("Pebble recycled no WAL in %d appends of %d bytes; write more", appends, len(data))
	}
	if n := syncs.Load(); n < appends {
		t.Fatalf("saw %d WAL syncs for %d serial appends: syncs of recycled WALs escape the wrapper", n, appends)
	}
}
