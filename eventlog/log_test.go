package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

var cmpCID = cmp.Options{cmp.Comparer(func(a, b cid.Cid) bool { return a.Equals(b) }), cmpopts.EquateEmpty()}

func readAll(t *testing.T, l *eventlog.Log, after eventlog.Seq) []*eventlog.Event {
	t.Helper()
	it, err := l.Iter(t.Context(), after)
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventlog.Event
	for it.Next() {
		out = append(out, it.Event())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendIterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l, err := eventlog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := eventlogtest.NewStream(1, 5)
	var want []*eventlog.Event
	for i := range 200 {
		ev := s.Next()
		seq, err := l.Append(t.Context(), ev)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if got, want := seq, eventlog.Seq(i+1); got != want {
			t.Fatalf("seq = %d, want %d", got, want)
		}
		want = append(want, ev)
	}
	check := func(l *eventlog.Log) {
		got := readAll(t, l, 0)
		if diff := cmp.Diff(want, got, cmpCID); diff != "" {
			t.Fatalf("events differ (-want +got):\n%s", diff)
		}
		if got := readAll(t, l, 150); len(got) != 50 || got[0].Seq != 151 {
			t.Fatalf("iter after 150: %d events, first %d", len(got), got[0].Seq)
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = eventlog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := l.Head(); got != 200 {
		t.Fatalf("head after reopen = %d", got)
	}
	check(l)
	// the next append continues the sequence
	seq, err := l.Append(t.Context(), s.Next())
	if err != nil || seq != 201 {
		t.Fatalf("append after reopen: seq %d err %v", seq, err)
	}
}

func TestRevConflict(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	clock := eventlogtest.NewClock()
	r := eventlogtest.NewRepo(eventlogtest.DID(1))
	first := r.Commit(clock, nil, 10)
	if _, err := l.Append(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	stale := *r
	a := r.Commit(clock, nil, 10)
	b := stale.Commit(clock, nil, 10) // same since as a
	if _, err := l.Append(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), b); !errors.Is(err, eventlog.ErrRevConflict) {
		t.Fatalf("second writer on same since: err = %v, want ErrRevConflict", err)
	}
	h, err := l.RepoHead(t.Context(), r.DID)
	if err != nil {
		t.Fatal(err)
	}
	if h.Rev != a.Commit.Rev || !h.Commit.Equals(a.Commit.Commit) || h.Seq != 2 {
		t.Fatalf("head = %+v, want rev %s seq 2", h, a.Commit.Rev)
	}
	if got := l.Head(); got != 2 {
		t.Fatalf("refused append moved head to %d", got)
	}
}

// Many goroutines race commits on one repo: exactly one wins each round.
func TestConcurrentSameRepo(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	clock := eventlogtest.NewClock()
	r := eventlogtest.NewRepo(eventlogtest.DID(7))
	for round := range 20 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		var winner *eventlogtest.Repo
		for range 8 {
			cp := *r
			ev := cp.Commit(clock, nil, 1)
			wg.Go(func() {
				_, err := l.Append(context.Background(), ev)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
					winner = &cp
				case !errors.Is(err, eventlog.ErrRevConflict):
					t.Errorf("append: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d winners", round, wins)
		}
		r = winner
	}
}

func TestAppendAtomicMultiEvent(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	clock := eventlogtest.NewClock()
	r := eventlogtest.NewRepo(eventlogtest.DID(1))
	c1 := r.Commit(clock, nil, 1)
	bad := *r
	bad.Rev = "" // a since that does not match
	c2 := bad.Commit(clock, nil, 1)
	id := &eventlog.Event{Kind: eventlog.KindIdentity, DID: r.DID, Identity: &eventlog.Identity{}}
	if _, err := l.Append(t.Context(), id, c1, c2); !errors.Is(err, eventlog.ErrRevConflict) {
		t.Fatalf("err = %v", err)
	}
	if l.Head() != 0 {
		t.Fatalf("partial write: head %d", l.Head())
	}
	if last, err := l.Append(t.Context(), id, c1); err != nil || last != 2 || id.Seq != 1 || c1.Seq != 2 {
		t.Fatalf("last %d err %v seqs %d %d", last, err, id.Seq, c1.Seq)
	}
}

func TestPurge(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	s := eventlogtest.NewStream(3, 3)
	for range 100 {
		if _, err := l.Append(t.Context(), s.Next()); err != nil {
			t.Fatal(err)
		}
	}
	victim := s.Repos[0].DID
	del := &eventlog.Event{Kind: eventlog.KindAccount, DID: victim, Account: &eventlog.Account{Status: "deleted"}}
	seq, err := l.Append(t.Context(), del)
	if err != nil {
		t.Fatal(err)
	}
	before := readAll(t, l, 0)
	n, err := l.Purge(t.Context(), victim, seq)
	if err != nil {
		t.Fatal(err)
	}
	after := readAll(t, l, 0)
	if len(after) != len(before) {
		t.Fatalf("purge changed event count %d -> %d", len(before), len(after))
	}
	tomb := 0
	for i, ev := range after {
		if ev.Seq != eventlog.Seq(i+1) {
			t.Fatalf("seq %d at %d", ev.Seq, i)
		}
		b := before[i]
		switch {
		case b.DID == victim && b.Seq < seq:
			if ev.Kind != eventlog.KindTombstone || ev.DID != "" {
				t.Fatalf("seq %d of victim not tombstoned: %+v", ev.Seq, ev)
			}
			tomb++
		default:
			if diff := cmp.Diff(b, ev, cmpCID); diff != "" {
				t.Fatalf("seq %d changed: %s", ev.Seq, diff)
			}
		}
	}
	if tomb != n || n == 0 {
		t.Fatalf("purge reported %d, tombstoned %d", n, tomb)
	}
	if _, err := l.RepoHead(t.Context(), victim); !errors.Is(err, eventlog.ErrNotFound) {
		t.Fatalf("head after purge: %v", err)
	}
	// purge again is a no-op; the deletion event stays.
	if n, err := l.Purge(t.Context(), victim, seq); err != nil || n != 0 {
		t.Fatalf("second purge n=%d err=%v", n, err)
	}
}

func TestFutureCursorAndWait(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	if _, err := l.Iter(t.Context(), 1); !errors.Is(err, eventlog.ErrFutureCursor) {
		t.Fatalf("iter past head: %v", err)
	}
	got := make(chan eventlog.Seq)
	go func() {
		s, _ := l.Wait(context.Background(), 0)
		got <- s
	}()
	ev := &eventlog.Event{Kind: eventlog.KindIdentity, DID: eventlogtest.DID(1), Identity: &eventlog.Identity{}}
	if _, err := l.Append(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != 1 {
		t.Fatalf("wait returned %d", s)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Wait(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait on cancelled ctx: %v", err)
	}
}

func TestSecretsSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	l, err := eventlog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("hunter2-very-secret-password-hash")
	ev := &eventlog.Event{Kind: eventlog.KindPrivate, DID: eventlogtest.DID(1),
		Private: &eventlog.Private{Type: "account.password", Secret: true, Data: secret}}
	if _, err := l.Append(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, l, 0)
	if string(got[0].Private.Data) != string(secret) {
		t.Fatalf("read back %q", got[0].Private.Data)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if found := grepDir(t, dir, secret); found != "" {
		t.Fatalf("secret found in plain text in %s", found)
	}
	// With another key the payload does not open.
	l2, err := eventlog.Open(dir, &eventlog.Options{SealKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	it, _ := l2.Iter(t.Context(), 0)
	if it.Next() || !errors.Is(it.Close(), eventlog.ErrCorrupt) {
		t.Fatal("sealed payload opened with the wrong key")
	}
}

func TestSeqFloorAfterRestore(t *testing.T) {
	dir := t.TempDir()
	l, err := eventlog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := &eventlog.Event{Kind: eventlog.KindIdentity, DID: eventlogtest.DID(1), Identity: &eventlog.Identity{}}
	for range 3 {
		if _, err := l.Append(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	// A restored copy that ends at 3 while seqs up to 10 were handed out.
	l, err = eventlog.Open(dir, &eventlog.Options{SeqFloor: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seq, err := l.Append(t.Context(), ev)
	if err != nil || seq != 11 {
		t.Fatalf("seq %d err %v, want 11", seq, err)
	}
	evs := readAll(t, l, 0)
	for i, e := range evs {
		wantKind := eventlog.KindIdentity
		if i >= 3 && i < 10 {
			wantKind = eventlog.KindTombstone
		}
		if e.Kind != wantKind || e.Seq != eventlog.Seq(i+1) {
			t.Fatalf("event %d: %s seq %d", i, e.Kind, e.Seq)
		}
	}
}

func TestInvalidEvents(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	did := eventlogtest.DID(1)
	tests := []struct {
		name string
		ev   *eventlog.Event
	}{
		{"nil", nil},
		{"no did", &eventlog.Event{Kind: eventlog.KindIdentity, Identity: &eventlog.Identity{}}},
		{"no payload", &eventlog.Event{Kind: eventlog.KindIdentity, DID: did}},
		{"wrong payload", &eventlog.Event{Kind: eventlog.KindAccount, DID: did, Identity: &eventlog.Identity{}}},
		{"two payloads", &eventlog.Event{Kind: eventlog.KindAccount, DID: did, Identity: &eventlog.Identity{}, Account: &eventlog.Account{}}},
		{"tombstone", &eventlog.Event{Kind: eventlog.KindTombstone, DID: did}},
		{"commit without rev", &eventlog.Event{Kind: eventlog.KindCommit, DID: did, Commit: &eventlog.Commit{}}},
		{"private without type", &eventlog.Event{Kind: eventlog.KindPrivate, DID: did, Private: &eventlog.Private{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Append(t.Context(), tt.ev); !errors.Is(err, eventlog.ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
		})
	}
	if l.Head() != 0 {
		t.Fatal("invalid events were written")
	}
	_ = fmt.Sprint()
}

// Closing an iterator twice must not hand its pooled Pebble iterator to
// two users (that corrupted concurrent readers once).
func TestIteratorDoubleClose(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	s := eventlogtest.NewStream(4, 2)
	for range 20 {
		if _, err := l.Append(t.Context(), s.Next()); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				it, err := l.Iter(context.Background(), 0)
				if err != nil {
					t.Error(err)
					return
				}
				n := 0
				for it.Next() {
					n++
				}
				if err := it.Close(); err != nil || n != 20 {
					t.Errorf("read %d events, err %v", n, err)
					return
				}
				if err := it.Close(); err != nil {
					t.Errorf("second close: %v", err)
					return
				}
				if it.Next() {
					t.Error("Next after Close")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestGet(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	s := eventlogtest.NewStream(8, 3)
	for range 60 {
		if _, err := l.Append(t.Context(), s.Next()); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range readAll(t, l, 0) {
		got, err := l.Get(t.Context(), want.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpCID); diff != "" {
			t.Fatalf("seq %d: Get differs from Iter: %s", want.Seq, diff)
		}
	}
	for _, seq := range []eventlog.Seq{0, 61} {
		if _, err := l.Get(t.Context(), seq); !errors.Is(err, eventlog.ErrNotFound) {
			t.Fatalf("Get(%d): %v", seq, err)
		}
	}
}

// A #sync may re-announce the current head (same rev, commit and data), as
// the reference does after a first commit and on activation; a #sync with
// the head's rev but another commit, or an older rev, is refused.
func TestSyncReannouncesHead(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	clock := eventlogtest.NewClock()
	r := eventlogtest.NewRepo(eventlogtest.DID(1))
	first := r.Commit(clock, nil, 10)
	c := first.Commit
	same := &eventlog.Event{Kind: eventlog.KindSync, DID: r.DID, Sync: &eventlog.Sync{Rev: c.Rev, Commit: c.Commit, Data: c.Data, Blocks: c.Blocks}}
	if _, err := l.Append(t.Context(), first, same); err != nil {
		t.Fatalf("commit + re-announcing sync in one batch: %v", err)
	}
	if _, err := l.Append(t.Context(), same); err != nil {
		t.Fatalf("re-announcing sync again: %v", err)
	}
	forged := &eventlog.Event{Kind: eventlog.KindSync, DID: r.DID, Sync: &eventlog.Sync{Rev: c.Rev, Commit: eventlogtest.CID("other"), Data: c.Data, Blocks: c.Blocks}}
	if _, err := l.Append(t.Context(), forged); !errors.Is(err, eventlog.ErrRevConflict) {
		t.Fatalf("sync at head rev with another commit: err = %v, want ErrRevConflict", err)
	}
	second := r.Commit(clock, nil, 10)
	if _, err := l.Append(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), same); !errors.Is(err, eventlog.ErrRevConflict) {
		t.Fatalf("sync of an older head: err = %v, want ErrRevConflict", err)
	}
	if err := l.Verify(t.Context(), nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	h, err := l.RepoHead(t.Context(), r.DID)
	if err != nil || h.Rev != second.Commit.Rev {
		t.Fatalf("head %+v %v", h, err)
	}
}

// IterRepo visits one account's events after a cursor, in order, skipping
// other accounts' and purged events.
func TestIterRepo(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	clock := eventlogtest.NewClock()
	a, b := eventlogtest.NewRepo(eventlogtest.DID(1)), eventlogtest.NewRepo(eventlogtest.DID(2))
	var aSeqs []eventlog.Seq
	for i := range 6 {
		r := a
		if i%2 == 1 {
			r = b
		}
		seq, err := l.Append(t.Context(), r.Commit(clock, nil, 10))
		if err != nil {
			t.Fatal(err)
		}
		if r == a {
			aSeqs = append(aSeqs, seq)
		}
	}
	collect := func(did syntax.DID, after eventlog.Seq) []eventlog.Seq {
		it, err := l.IterRepo(t.Context(), did, after)
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var got []eventlog.Seq
		for it.Next() {
			if it.Event().DID != did {
				t.Fatalf("event of %s in %s's iteration", it.Event().DID, did)
			}
			got = append(got, it.Event().Seq)
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		after eventlog.Seq
		want  []eventlog.Seq
	}{
		{0, aSeqs},
		{aSeqs[0], aSeqs[1:]},
		{aSeqs[2], nil},
		{100, nil},
	}
	for _, tt := range tests {
		if got := collect(a.DID, tt.after); !slices.Equal(got, tt.want) {
			t.Errorf("after %d: %v, want %v", tt.after, got, tt.want)
		}
	}
	if _, err := l.Purge(t.Context(), a.DID, aSeqs[2]); err != nil {
		t.Fatal(err)
	}
	if got := collect(a.DID, 0); !slices.Equal(got, aSeqs[2:]) {
		t.Errorf("after purge: %v, want %v", got, aSeqs[2:])
	}
}
