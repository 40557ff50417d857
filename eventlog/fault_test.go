package eventlog_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/google/go-cmp/cmp"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// Fault injection: Pebble runs on an in-memory crashable filesystem wrapped
// by errorfs; once the log is open and has acknowledged some events, writes
// or syncs of the WAL start failing. The log must refuse to acknowledge
// anything from then on, never let a reader see what failed, and lose
// nothing it did acknowledge, even if the machine dies right there.

const faultDir = "/db"

var errFsyncFailed = fmt.Errorf("injected fsync failure: %w", syscall.EIO)

// walFault returns an injector that fails the given op kinds on WAL files.
func walFault(err error, kinds ...errorfs.OpKind) errorfs.Injector {
	return errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		for _, k := range kinds {
			if op.Kind == k {
				return err
			}
		}
		return nil
	})
}

var (
	syncOps  = []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}
	writeOps = []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func faultOptions(fs vfs.FS) *eventlog.Options {
	return &eventlog.Options{FS: fs, SealKey: make([]byte, eventlog.KeySize), Logger: quietLogger()}
}

func TestFaultInjection(t *testing.T) {
	for _, tc := range []struct {
		name string
		inj  errorfs.Injector
	}{
		{"wal_fsync_EIO", walFault(errFsyncFailed, syncOps...)},
		{"wal_write_ENOSPC", walFault(syscall.ENOSPC, writeOps...)},
		{"wal_write_injected", walFault(errorfs.ErrInjected, writeOps...)},
	} {
		t.Run(tc.name, func(t *testing.T) { testFault(t, tc.inj) })
	}
}

func testFault(t *testing.T, inj errorfs.Injector) {
	ctx := t.Context()
	mem := vfs.NewCrashableMem()
	toggle := &errorfs.Toggle{Injector: inj}
	l, err := eventlog.Open(faultDir, faultOptions(eventlog.WrapFS(mem, toggle)))
	if err != nil {
		t.Fatal(err)
	}
	s := eventlogtest.NewStream(7, 4)
	var acked []*eventlog.Event
	for range 50 {
		ev := s.Next()
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ev)
	}
	head := l.Head()
	if head != 50 {
		t.Fatalf("head = %d, want 50", head)
	}

	select {
	case <-l.Failed():
		t.Fatal("Failed closed before any failure")
	default:
	}
	toggle.On()
	// A commit, so that the failed batch also carries a repo head update.
	r := s.Repos[0]
	if r.Rev == "" {
		t.Fatal("stream left repo 0 without commits")
	}
	failed := r.Commit(s.Clock, r.RandomOps(s.Rng, s.Clock, 3), 2000)
	if seq, err := l.Append(ctx, failed); !errors.Is(err, eventlog.ErrFailed) {
		t.Fatalf("append under fault: seq %d err %v, want ErrFailed", seq, err)
	}
	select {
	case <-l.Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("Failed not closed after a failed append")
	}
	checkFailedLog(t, l, head, acked, r.DID)

	// The fault goes away, but the log stays failed until reopened.
	toggle.Off()
	if _, err := l.Append(ctx, s.Next()); !errors.Is(err, eventlog.ErrFailed) {
		t.Fatalf("append after fault cleared: %v, want ErrFailed", err)
	}
	if _, err := l.Purge(ctx, r.DID, 1); !errors.Is(err, eventlog.ErrFailed) {
		t.Fatalf("purge after fault: %v, want ErrFailed", err)
	}
	checkFailedLog(t, l, head, acked, r.DID)

	// Power cut right now: only synced data survives.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	_ = l.Close() // may report the sticky WAL error; must not hang or panic
	checkReopened(t, crashed, acked, failed)
	// A clean restart on the original filesystem.
	checkReopened(t, mem, acked, failed)
}

// checkFailedLog asserts that the failed log shows exactly the acknowledged
// events, that its head did not move and that it keeps refusing work.
func checkFailedLog(t *testing.T, l *eventlog.Log, head eventlog.Seq, acked []*eventlog.Event, did syntax.DID) {
	t.Helper()
	if got := l.Head(); got != head {
		t.Fatalf("head moved to %d after failure, want %d", got, head)
	}
	if got := readAll(t, l, 0); !cmp.Equal(acked, got, cmpEvents) {
		t.Fatalf("reader sees something else than the acknowledged events:\n%s", cmp.Diff(acked, got, cmpEvents))
	}
	if _, err := l.Iter(t.Context(), head+1); !errors.Is(err, eventlog.ErrFutureCursor) {
		t.Fatalf("iter past head after failure: %v", err)
	}
	if got, err := l.Wait(context.Background(), head); !errors.Is(err, eventlog.ErrFailed) || got != head {
		t.Fatalf("wait after failure = %d, %v; want %d, ErrFailed", got, err, head)
	}
	// The head key of the failed commit is in Pebble's memtable; RepoHead
	// must not hand it out.
	h, err := l.RepoHead(context.Background(), did)
	if err == nil && h.Seq > head {
		t.Fatalf("RepoHead reveals the failed commit: %+v", h)
	}
	if err != nil && !errors.Is(err, eventlog.ErrFailed) {
		t.Fatalf("RepoHead after failure: %v", err)
	}
}

// checkReopened opens the log on fs and checks that every acknowledged event
// is there, dense from 1, followed at most by the unacknowledged ones, and
// that the log accepts appends again.
func checkReopened(t *testing.T, fs vfs.FS, acked []*eventlog.Event, unacked ...*eventlog.Event) {
	t.Helper()
	l, err := eventlog.Open(faultDir, faultOptions(fs))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	got := readAll(t, l, 0)
	if eventlog.Seq(len(got)) != l.Head() {
		t.Fatalf("reopened head %d but %d events", l.Head(), len(got))
	}
	if len(got) < len(acked) {
		t.Fatalf("reopened log lost acknowledged events: %d < %d", len(got), len(acked))
	}
	if diff := cmp.Diff(acked, got[:len(acked)], cmpEvents); diff != "" {
		t.Fatalf("acknowledged events changed after reopen (-want +got):\n%s", diff)
	}
	extra := got[len(acked):]
	if len(extra) > len(unacked) {
		t.Fatalf("reopened log has %d events past the acknowledged ones, only %d were attempted", len(extra), len(unacked))
	}
	for i, ev := range extra {
		if diff := cmp.Diff(unacked[i], ev, cmpEvents); diff != "" {
			t.Fatalf("seq %d is not the unacknowledged event (-want +got):\n%s", ev.Seq, diff)
		}
	}
	next := &eventlog.Event{Kind: eventlog.KindIdentity, DID: eventlogtest.DID(99), Identity: &eventlog.Identity{}}
	seq, err := l.Append(t.Context(), next)
	if err != nil || seq != eventlog.Seq(len(got))+1 {
		t.Fatalf("append after reopen: seq %d err %v, want %d", seq, err, len(got)+1)
	}
}

// Many appenders are running when the WAL starts failing. Every append
// must end either acknowledged or with ErrFailed, the failed log must show
// exactly the acknowledged events, and after a restart every acknowledged
// event must be there.
//
// This runs in a child process on a real directory because Pebble itself
// may panic here, in the log's committer goroutine, where the log cannot
// recover (Pebble's own locks are held or already released):
//
//   - db.go commitWrite: "panic(err)" when LogWriter.WriteRecord returns the
//     WAL's sticky write/sync error. Reachable because the committer
//     pipelines: it hands Pebble the next batches while an earlier batch's
//     sync is failing, before the sync loop has seen the error.
//   - db.go rotateWAL: "panic(err)" when closing the full WAL during a
//     memtable rotation fails (it flushes and syncs); the unwinding then hits
//     "fatal error: sync: unlock of unlocked mutex". This one happens even
//     without pipelining if the first failing I/O is the rotation's.
//
// A panic is still fail-stop, so the durability check after the restart
// applies either way; the test logs each panic, and -fault.strict counts a
// Pebble panic as a failure.

var faultStrict = flag.Bool("fault.strict", false, "fail TestFaultInjectionConcurrent when Pebble panics instead of the log refusing writes")

const (
	faultChildEnv   = "PDSLOG_EVENTLOG_FAULT_CHILD" // the log directory, in the child
	faultModeEnv    = "PDSLOG_EVENTLOG_FAULT_MODE"
	faultTriggerEnv = "PDSLOG_EVENTLOG_FAULT_TRIGGER"
	faultSeedEnv    = "PDSLOG_EVENTLOG_FAULT_SEED"
)

var faultKey = bytes.Repeat([]byte{7}, eventlog.KeySize)

func TestFaultInjectionConcurrent(t *testing.T) {
	if os.Getenv(faultChildEnv) != "" {
		t.Skip("in child")
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	const rounds = 8
	var panics []string
	for round := range rounds {
		mode := []string{"sync", "write"}[round%2]
		trigger := 20 + rng.IntN(300)
		dir := t.TempDir()
		c := startChild(t, "TestHelperFaultChild", faultChildEnv+"="+dir, faultModeEnv+"="+mode,
			faultTriggerEnv+"="+strconv.Itoa(trigger), faultSeedEnv+"="+strconv.FormatUint(rng.Uint64(), 10))
		<-c.eof
		err := c.cmd.Wait()
		stderr := c.stderr.String()
		if strings.Contains(stderr, "DATA RACE") {
			t.Fatalf("round %d: race detected in child:\n%s", round, stderr)
		}
		if len(c.bad) > 0 {
			t.Fatalf("round %d: child printed malformed lines: %q", round, c.bad)
		}
		switch {
		case err == nil && len(c.done) == 1:
			// The log refused cleanly and the child checked the failed log.
		case err != nil && pebbleWALPanic(stderr) != "":
			site := pebbleWALPanic(stderr)
			panics = append(panics, fmt.Sprintf("round %d (%s fault after %d acks): %s", round, mode, trigger, site))
			if *faultStrict {
				t.Errorf("round %d: Pebble panicked in %s instead of the log refusing writes:\n%s", round, site, stderr)
			}
		default:
			t.Fatalf("round %d (%s fault after %d acks): child: %v\n%s", round, mode, trigger, err, stderr)
		}
		verifyAcked(t, dir, c.acks)
	}
	t.Logf("seed %d: Pebble panicked in %d of %d rounds (fail-stop; no acknowledged event lost):", seed, len(panics), rounds)
	for _, p := range panics {
		t.Log("  ", p)
	}
}

// pebbleWALPanic returns where a child died of a Pebble panic raised from
// the log's committer, or "".
func pebbleWALPanic(stderr string) string {
	if !strings.Contains(stderr, "panic: ") || !strings.Contains(stderr, "eventlog.(*Log).commitLoop") {
		return ""
	}
	for _, site := range []string{"pebble/v2.(*DB).rotateWAL", "pebble/v2.(*DB).commitWrite"} {
		if strings.Contains(stderr, site) {
			msg, _, _ := strings.Cut(stderr[strings.Index(stderr, "panic: "):], "\n")
			if i := strings.Index(stderr, "fatal error: "); i >= 0 {
				fe, _, _ := strings.Cut(stderr[i:], "\n")
				msg += "; " + fe
			}
			return site + ": " + msg
		}
	}
	return ""
}

// verifyAcked reopens the child's log without faults and checks that every
// acknowledged event is there with the same content at the same seq, that
// seqs are dense and that appends continue at head+1.
func verifyAcked(t *testing.T, dir string, acks []ack) {
	t.Helper()
	l, err := eventlog.Open(dir, &eventlog.Options{SealKey: faultKey, Logger: discardLogger()})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	got := readAll(t, l, 0)
	if eventlog.Seq(len(got)) != l.Head() {
		t.Fatalf("head %d but %d events", l.Head(), len(got))
	}
	for i, ev := range got {
		if ev.Seq != eventlog.Seq(i+1) {
			t.Fatalf("seq %d at position %d", ev.Seq, i)
		}
	}
	for _, a := range acks {
		if a.seq > eventlog.Seq(len(got)) {
			t.Fatalf("acknowledged seq %d lost: log ends at %d", a.seq, len(got))
		}
		if d := digest(got[a.seq-1]); d != a.digest {
			t.Fatalf("acknowledged seq %d has other content after restart", a.seq)
		}
	}
	ev := &eventlog.Event{Kind: eventlog.KindIdentity, DID: "did:plc:faultparent", Identity: &eventlog.Identity{}}
	if seq, err := l.Append(t.Context(), ev); err != nil || seq != eventlog.Seq(len(got))+1 {
		t.Fatalf("append after restart: seq %d err %v, want %d", seq, err, len(got)+1)
	}
}

// faultChild is the child process of TestFaultInjectionConcurrent.
func faultChild(dir string) {
	fatal := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "CHILD FATAL: "+format+"\n", args...)
		os.Exit(3)
	}
	time.AfterFunc(2*time.Minute, func() { fatal("still running after 2 minutes") })
	trigger, err := strconv.Atoi(os.Getenv(faultTriggerEnv))
	if err != nil {
		fatal("trigger: %v", err)
	}
	seed, err := strconv.ParseUint(os.Getenv(faultSeedEnv), 10, 64)
	if err != nil {
		fatal("seed: %v", err)
	}
	var inj errorfs.Injector
	switch m := os.Getenv(faultModeEnv); m {
	case "sync":
		inj = walFault(errFsyncFailed, syncOps...)
	case "write":
		inj = walFault(syscall.ENOSPC, writeOps...)
	default:
		fatal("mode %q", m)
	}
	toggle := &errorfs.Toggle{Injector: inj}
	l, err := eventlog.Open(dir, &eventlog.Options{FS: eventlog.WrapFS(vfs.Default, toggle), SealKey: faultKey,
		Logger: discardLogger()})
	if err != nil {
		fatal("open: %v", err)
	}
	var outMu sync.Mutex
	emit := func(s string) {
		outMu.Lock()
		defer outMu.Unlock()
		if _, err := io.WriteString(os.Stdout, s); err != nil {
			os.Exit(4)
		}
	}
	emit("OPEN 0\n")

	var (
		mu    sync.Mutex
		acked = map[eventlog.Seq]string{}
		wg    sync.WaitGroup
	)
	for g := range crashAppenders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			clock := eventlogtest.NewClock()
			repos := []*eventlogtest.Repo{eventlogtest.NewRepo(crashDID(g, 0)), eventlogtest.NewRepo(crashDID(g, 1))}
			for n := 1; ; n++ {
				evs := crashEvents(rng, clock, repos, n)
				if _, err := l.Append(context.Background(), evs...); err != nil {
					if !errors.Is(err, eventlog.ErrFailed) {
						fatal("append: %v, want ErrFailed", err)
					}
					return
				}
				var b strings.Builder
				mu.Lock()
				for _, ev := range evs {
					acked[ev.Seq] = digest(ev)
					b.WriteString(ackLine(ev))
				}
				if len(acked) >= trigger {
					toggle.On()
				}
				mu.Unlock()
				emit(b.String())
			}
		})
	}
	wg.Wait()

	// The failed log shows exactly what it acknowledged, and nothing more.
	head := l.Head()
	if len(acked) != int(head) {
		fatal("%d events acknowledged, head %d", len(acked), head)
	}
	it, err := l.Iter(context.Background(), 0)
	if err != nil {
		fatal("iter: %v", err)
	}
	n := 0
	for it.Next() {
		ev := it.Event()
		n++
		if d, ok := acked[ev.Seq]; !ok || d != digest(ev) {
			fatal("failed log shows seq %d, which is not the acknowledged event", ev.Seq)
		}
	}
	if err := it.Close(); err != nil {
		fatal("iter: %v", err)
	}
	if n != int(head) {
		fatal("failed log shows %d events, head %d", n, head)
	}
	if _, err := l.Wait(context.Background(), head); !errors.Is(err, eventlog.ErrFailed) {
		fatal("wait on failed log: %v", err)
	}
	ev := &eventlog.Event{Kind: eventlog.KindIdentity, DID: crashDID(0, 0), Identity: &eventlog.Identity{}}
	if _, err := l.Append(context.Background(), ev); !errors.Is(err, eventlog.ErrFailed) {
		fatal("append on failed log: %v", err)
	}
	emit(fmt.Sprintf("DONE %d\n", head))
	_ = l.Close()
}
