package eventlog_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, eventlog.KeySize) }

// fillLog appends n events of a random stream to a log with key, purging
// the first repo's history halfway through as an account deletion does.
func fillLog(t *testing.T, dir string, key []byte, n int) {
	t.Helper()
	ctx := context.Background()
	l, err := eventlog.Open(dir, &eventlog.Options{SealKey: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st := eventlogtest.NewStream(7, 5)
	for i := range n {
		if i == n/2 {
			did := st.Repos[0].DID
			seq, err := l.Append(ctx, &eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Status: "deleted"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Purge(ctx, did, seq); err != nil {
				t.Fatal(err)
			}
			st.Replace(did)
			continue
		}
		if _, err := l.Append(ctx, st.Next()); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A log read raw and imported at its own seqs into an empty directory is
// the same log: every stored value byte for byte, every event and repo
// head as Get and RepoHead give them, and it verifies.
func TestImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	key := testKey(7)
	src := filepath.Join(t.TempDir(), "src")
	fillLog(t, src, key, 600)
	a, err := eventlog.Open(src, &eventlog.Options{SealKey: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	dst := filepath.Join(t.TempDir(), "dst")
	im, err := eventlog.OpenImporter(dst, &eventlog.ImportOptions{SealKey: key, BatchEvents: 37, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	it, err := a.IterRaw(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var tombstones, secrets int
	for it.Next() {
		ev, err := im.Add(it.Seq(), it.Value())
		if err != nil {
			t.Fatalf("add %d: %v", it.Seq(), err)
		}
		if eventlog.IsTombstone(it.Value()) != (ev.Kind == eventlog.KindTombstone) {
			t.Fatalf("seq %d: IsTombstone disagrees with the decoded kind %s", it.Seq(), ev.Kind)
		}
		if ev.Kind == eventlog.KindTombstone {
			tombstones++
		}
		if ev.Private != nil && ev.Private.Secret {
			secrets++
			if !bytes.HasPrefix(ev.Private.Data, []byte("secret-")) {
				t.Fatalf("seq %d: secret not opened: %q", ev.Seq, ev.Private.Data)
			}
			stored, _ := eventlog.DecodeStored(it.Value())
			if bytes.Contains(it.Value(), ev.Private.Data) || bytes.Equal(stored.Private.Data, ev.Private.Data) {
				t.Fatalf("seq %d: the stored value holds the secret in clear", ev.Seq)
			}
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if tombstones == 0 || secrets == 0 {
		t.Fatalf("stream had %d tombstones, %d secrets: the test covers neither", tombstones, secrets)
	}
	if im.Next() != a.Head()+1 {
		t.Fatalf("importer next %d, head %d", im.Next(), a.Head())
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := eventlog.Open(dst, &eventlog.Options{SealKey: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Head() != a.Head() {
		t.Fatalf("imported head %d, source %d", b.Head(), a.Head())
	}
	ra, _ := a.IterRaw(ctx, 0)
	rb, _ := b.IterRaw(ctx, 0)
	for ra.Next() {
		if !rb.Next() || ra.Seq() != rb.Seq() || !bytes.Equal(ra.Value(), rb.Value()) {
			t.Fatalf("stored value of seq %d differs", ra.Seq())
		}
	}
	if rb.Next() {
		t.Fatal("imported log is longer")
	}
	ra.Close()
	rb.Close()
	for seq := eventlog.Seq(1); seq <= a.Head(); seq++ {
		ea, _ := a.Get(ctx, seq)
		eb, err := b.Get(ctx, seq)
		if err != nil || !reflect.DeepEqual(ea, eb) {
			t.Fatalf("seq %d: %v\n%+v\n%+v", seq, err, ea, eb)
		}
		if ea.DID != "" {
			ha, errA := a.RepoHead(ctx, ea.DID)
			hb, errB := b.RepoHead(ctx, ea.DID)
			if !errors.Is(errB, errA) && (errA != nil || errB != nil) || ha != hb {
				t.Fatalf("head of %s: %+v %v / %+v %v", ea.DID, ha, errA, hb, errB)
			}
		}
	}
	if err := b.Verify(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// Importer.Purge leaves what Log.Purge leaves: the same stored values,
// heads and per-repo index.
func TestImportPurgeMatchesLog(t *testing.T) {
	ctx := context.Background()
	key := testKey(3)
	st := eventlogtest.NewStream(11, 3)
	var evs []*eventlog.Event
	for range 200 {
		evs = append(evs, st.Next())
	}
	did := st.Repos[1].DID
	evs = append(evs, &eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Status: "deleted"}})

	live := eventlogtest.Open(t, &eventlog.Options{SealKey: key})
	var vals [][]byte
	for _, ev := range evs {
		if _, err := live.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	it, _ := live.IterRaw(ctx, 0)
	for it.Next() {
		vals = append(vals, bytes.Clone(it.Value()))
	}
	it.Close()
	nLive, err := live.Purge(ctx, did, live.Head())
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	im, err := eventlog.OpenImporter(dir, &eventlog.ImportOptions{SealKey: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if _, err := im.Add(eventlog.Seq(i+1), v); err != nil {
			t.Fatal(err)
		}
	}
	nImp, err := im.Purge(did, eventlog.Seq(len(vals)))
	if err != nil || nImp != nLive || nImp == 0 {
		t.Fatalf("import purge tombstoned %d (%v), the log %d", nImp, err, nLive)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := eventlog.Open(dir, &eventlog.Options{SealKey: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	ra, _ := live.IterRaw(ctx, 0)
	rb, _ := got.IterRaw(ctx, 0)
	for ra.Next() {
		if !rb.Next() || !bytes.Equal(ra.Value(), rb.Value()) {
			t.Fatalf("seq %d differs after purge", ra.Seq())
		}
	}
	ra.Close()
	rb.Close()
	for _, d := range st.DIDs() {
		ha, errA := live.RepoHead(ctx, d)
		hb, errB := got.RepoHead(ctx, d)
		if ha != hb || (errA == nil) != (errB == nil) {
			t.Fatalf("head of %s: %+v %v / %+v %v", d, ha, errA, hb, errB)
		}
		ia, _ := live.IterRepo(ctx, d, 0)
		ib, _ := got.IterRepo(ctx, d, 0)
		for ia.Next() {
			if !ib.Next() || ia.Event().Seq != ib.Event().Seq {
				t.Fatalf("repo index of %s differs", d)
			}
		}
		if ib.Next() {
			t.Fatalf("repo index of %s longer after import", d)
		}
		ia.Close()
		ib.Close()
	}
	if _, err := got.RepoHead(ctx, did); !errors.Is(err, eventlog.ErrNotFound) {
		t.Fatalf("deleted account's head: %v", err)
	}
}

// What the importer refuses: a seq out of order, a value that does not
// decode, a commit that does not chain, a sealed payload under another
// key; and whatever it refused leaves the log as it was.
func TestImportRefuses(t *testing.T) {
	key := testKey(5)
	repo := eventlogtest.NewRepo(eventlogtest.DID(1))
	clock := eventlogtest.NewClock()
	first, _ := eventlog.EncodeStored(repo.Commit(clock, nil, 4))
	second, _ := eventlog.EncodeStored(repo.Commit(clock, nil, 4))
	other := eventlogtest.NewRepo(eventlogtest.DID(1))
	other.Rev = clock.Next() // a since the repo never had
	unchained, _ := eventlog.EncodeStored(other.Commit(clock, nil, 4))
	sealedElsewhere := func() []byte {
		l := eventlogtest.Open(t, &eventlog.Options{SealKey: testKey(9)})
		if _, err := l.Append(context.Background(), &eventlog.Event{Kind: eventlog.KindPrivate, DID: eventlogtest.DID(2),
			Private: &eventlog.Private{Type: "x", Secret: true, Data: []byte("s")}}); err != nil {
			t.Fatal(err)
		}
		it, _ := l.IterRaw(context.Background(), 0)
		defer it.Close()
		it.Next()
		return bytes.Clone(it.Value())
	}()
	for _, tc := range []struct {
		name    string
		seq     eventlog.Seq
		val     []byte
		wantErr error
		verify  bool // a *VerifyError
	}{
		{"seq gap", 3, second, eventlog.ErrImportOrder, false},
		{"seq repeated", 1, second, eventlog.ErrImportOrder, false},
		{"empty value", 2, nil, eventlog.ErrCorrupt, false},
		{"garbage", 2, []byte{1, 0xff, 0xff}, eventlog.ErrCorrupt, false},
		{"unknown format", 2, []byte{9, 1}, eventlog.ErrUnknownFormat, false},
		{"unchained commit", 2, unchained, nil, true},
		{"other seal key", 2, sealedElsewhere, eventlog.ErrCorrupt, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			im, err := eventlog.OpenImporter(dir, &eventlog.ImportOptions{SealKey: key, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := im.Add(1, first); err != nil {
				t.Fatal(err)
			}
			_, err = im.Add(tc.seq, tc.val)
			var ve *eventlog.VerifyError
			switch {
			case tc.verify && !errors.As(err, &ve):
				t.Fatalf("got %v, want a VerifyError", err)
			case !tc.verify && !errors.Is(err, tc.wantErr):
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			// Nothing of the refused event was written: the next good
			// one still goes in at seq 2.
			if _, err := im.Add(2, second); err != nil {
				t.Fatalf("after the refusal: %v", err)
			}
			if err := im.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIterRawFutureCursor(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	if _, err := l.IterRaw(context.Background(), 1); !errors.Is(err, eventlog.ErrFutureCursor) {
		t.Fatalf("got %v", err)
	}
}
