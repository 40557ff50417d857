package eventlog_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// A nearly full disk refuses appends with ErrDiskFull before they reach
// Pebble: nothing is written or acknowledged, the log does not fail, and
// the same append succeeds once space is freed, without a reopen.
func TestDiskFullRefusesThenRecovers(t *testing.T) {
	ctx := t.Context()
	const reserve = 1 << 20
	mem := vfs.NewMem()
	setAvail := func(n uint64) {
		mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: n, TotalBytes: 1 << 32, UsedBytes: 1<<32 - n})
	}
	setAvail(1 << 30)
	opts := faultOptions(mem)
	opts.MinFreeBytes = reserve
	var logs eventlogtest.SyncBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	l, err := eventlog.Open(faultDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	s := eventlogtest.NewStream(11, 3)
	var acked []*eventlog.Event
	for range 30 {
		ev := s.Next()
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ev)
	}
	head := l.Head()
	r := s.Repos[0]
	before, err := l.RepoHead(ctx, r.DID)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		avail uint64
	}{
		{"below_reserve", reserve / 2},
		{"batch_would_cross_reserve", reserve + 1000}, // the commit carries 4,000 block bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			setAvail(tc.avail)
			refused := r.Commit(s.Clock, r.RandomOps(s.Rng, s.Clock, 2), 4000)
			seq, err := l.Append(ctx, refused)
			if !errors.Is(err, eventlog.ErrDiskFull) || errors.Is(err, eventlog.ErrFailed) {
				t.Fatalf("append on a full disk: seq %d err %v, want ErrDiskFull only", seq, err)
			}
			if err := l.Failure(); err != nil {
				t.Fatalf("log failed on a full disk: %v", err)
			}
			if got := l.Head(); got != head {
				t.Fatalf("head moved to %d, want %d", got, head)
			}
			if got := readAll(t, l, 0); !cmp.Equal(acked, got, cmpEvents) {
				t.Fatalf("refused append is visible:\n%s", cmp.Diff(acked, got, cmpEvents))
			}
			if h, err := l.RepoHead(ctx, r.DID); err != nil || h != before {
				t.Fatalf("repo head after refusal = %+v, %v; want %+v", h, err, before)
			}
			if err := l.CheckSpace(4000); !errors.Is(err, eventlog.ErrDiskFull) {
				t.Fatalf("CheckSpace on a full disk: %v", err)
			}
			// Purges always pass: account deletion must work on a full disk.
			if _, err := l.Purge(ctx, eventlogtest.DID(999), 1); err != nil {
				t.Fatalf("purge on a full disk: %v", err)
			}
			// The refused commit is re-made next time round from the same
			// head: undo the stream's bookkeeping of it.
			r.Rev, r.Data = before.Rev, before.Data
		})
	}

	// A small event still fits above the reserve in the second case's state.
	setAvail(reserve + 1000)
	small := &eventlog.Event{Kind: eventlog.KindIdentity, DID: r.DID, Identity: &eventlog.Identity{}}
	if _, err := l.Append(ctx, small); err != nil {
		t.Fatalf("small append that fits above the reserve: %v", err)
	}
	acked = append(acked, small)

	// Space returns: the next commit chains from the last acknowledged one.
	setAvail(1 << 30)
	next := r.Commit(s.Clock, r.RandomOps(s.Rng, s.Clock, 2), 4000)
	seq, err := l.Append(ctx, next)
	if err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	if seq != head+2 {
		t.Fatalf("seq after recovery = %d, want %d", seq, head+2)
	}
	if next.Commit.Since != before.Rev {
		t.Fatalf("recovered commit since %q, want %q", next.Commit.Since, before.Rev)
	}
	if err := l.CheckSpace(4000); err != nil {
		t.Fatalf("CheckSpace after recovery: %v", err)
	}
	// The operator is told once when appends stop and once when they resume.
	for msg, want := range map[string]int{"disk nearly full": 1, "disk space available again": 1} {
		if n := strings.Count(logs.String(), msg); n != want {
			t.Errorf("log has %q %d times, want %d:\n%s", msg, n, want, logs.String())
		}
	}
}
