package eventlog_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// The crash test runs the log in a child process (this test binary re-run
// dispatched by TestMain to crashChild), which appends from many goroutines and reports every
// acknowledged event on stdout; the parent SIGKILLs it at a random moment,
// reopens the directory and checks that nothing acknowledged was lost or
// changed, that seqs are dense, that repo heads chain and that appends go on
// at head+1. Then it starts the next child on the same directory.

var crashCycles = flag.Int("crash.cycles", 20, "kill/reopen cycles of TestCrashKill9 (env PDSLOG_CRASH_CYCLES overrides)")

const (
	crashChildEnv   = "PDSLOG_EVENTLOG_CRASH_CHILD" // the log directory, in the child
	crashAppenders  = 16
	crashReposPerGo = 2
	crashMaxBlocks  = 4096
)

func crashDID(worker, i int) syntax.DID {
	return syntax.DID(fmt.Sprintf("did:plc:crash%02dx%d", worker, i))
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// digest fingerprints everything about an event except its seq, so that
// parent and child can compare what was appended with what is stored.
func digest(ev *eventlog.Event) string {
	h := sha256.New()
	cs := func(c cid.Cid) string {
		if !c.Defined() {
			return "-"
		}
		return c.String()
	}
	fmt.Fprintf(h, "%s|%s|%s|", ev.Kind, ev.DID, ev.Time)
	switch {
	case ev.Commit != nil:
		c := ev.Commit
		fmt.Fprintf(h, "c|%s|%s|%s|%s|%s|%x|", c.Rev, c.Since, cs(c.Commit), cs(c.Data), cs(c.PrevData), c.Blocks)
		for _, op := range c.Ops {
			fmt.Fprintf(h, "%s,%s,%s,%s;", op.Action, op.Path, cs(op.CID), cs(op.Prev))
		}
	case ev.Sync != nil:
		s := ev.Sync
		fmt.Fprintf(h, "s|%s|%s|%s|%x", s.Rev, cs(s.Commit), cs(s.Data), s.Blocks)
	case ev.Identity != nil:
		fmt.Fprintf(h, "i|%s", ev.Identity.Handle)
	case ev.Account != nil:
		fmt.Fprintf(h, "a|%t|%s", ev.Account.Active, ev.Account.Status)
	case ev.Private != nil:
		fmt.Fprintf(h, "p|%s|%t|%x", ev.Private.Type, ev.Private.Secret, ev.Private.Data)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// ackLine is what the child prints for one acknowledged event:
// "ACK seq kind did rev commit digest" (rev and commit are "-" unless the
// event moves a repo head).
func ackLine(ev *eventlog.Event) string {
	rev, commit := "-", "-"
	switch {
	case ev.Commit != nil:
		rev, commit = string(ev.Commit.Rev), ev.Commit.Commit.String()
	case ev.Sync != nil:
		rev, commit = string(ev.Sync.Rev), ev.Sync.Commit.String()
	}
	return fmt.Sprintf("ACK %d %s %s %s %s %s\n", ev.Seq, ev.Kind, ev.DID, rev, commit, digest(ev))
}

type ack struct {
	seq    eventlog.Seq
	kind   eventlog.Kind
	did    syntax.DID
	rev    syntax.TID
	commit string
	digest string
}

func parseAck(line string) (ack, error) {
	f := strings.Fields(line)
	if len(f) != 7 || f[0] != "ACK" {
		return ack{}, fmt.Errorf("bad ack line %q", line)
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return ack{}, fmt.Errorf("bad ack line %q: %v", line, err)
	}
	a := ack{seq: eventlog.Seq(seq), kind: eventlog.Kind(f[2]), did: syntax.DID(f[3]), commit: f[5], digest: f[6]}
	if f[4] != "-" {
		a.rev = syntax.TID(f[4])
	}
	return a, nil
}

// TestMain runs a child process's body instead of the tests when the crash
// or fault test started this binary as its child.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	if dir := os.Getenv(faultChildEnv); dir != "" {
		faultChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild is the child process of TestCrashKill9.
func crashChild(dir string) {
	fatal := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "CHILD FATAL: "+format+"\n", args...)
		os.Exit(3)
	}
	// Never outlive a parent that forgot us.
	time.AfterFunc(2*time.Minute, func() { fatal("not killed after 2 minutes") })

	l, err := eventlog.Open(dir, &eventlog.Options{Logger: discardLogger()})
	if err != nil {
		fatal("open: %v", err)
	}
	var outMu sync.Mutex
	emit := func(s string) {
		outMu.Lock()
		defer outMu.Unlock()
		if _, err := io.WriteString(os.Stdout, s); err != nil {
			os.Exit(4) // parent gone
		}
	}
	emit(fmt.Sprintf("OPEN %d\n", l.Head()))

	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range crashAppenders {
		// Restore this worker's repo chains from the log.
		clock := eventlogtest.NewClock()
		repos := make([]*eventlogtest.Repo, crashReposPerGo)
		for i := range repos {
			r := eventlogtest.NewRepo(crashDID(w, i))
			h, err := l.RepoHead(ctx, r.DID)
			switch {
			case errors.Is(err, eventlog.ErrNotFound):
			case err != nil:
				fatal("repo head %s: %v", r.DID, err)
			default:
				r.Rev, r.Data = h.Rev, h.Data
				for next := clock.Next(); next <= h.Rev; next = clock.Next() {
					// the wall clock went backwards; catch up with the head
				}
			}
			repos[i] = r
		}
		seed := uint64(time.Now().UnixNano()) + uint64(w)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			n := 0
			for {
				n++
				evs := crashEvents(rng, clock, repos, n)
				if _, err := l.Append(ctx, evs...); err != nil {
					fatal("append: %v", err)
				}
				var b strings.Builder
				for _, ev := range evs {
					b.WriteString(ackLine(ev))
				}
				emit(b.String())
			}
		})
	}
	wg.Wait()
}

// crashEvents returns the next append of a crash-test worker: one event, or
// sometimes several that must land atomically.
func crashEvents(rng *rand.Rand, clock *eventlogtest.Clock, repos []*eventlogtest.Repo, n int) []*eventlog.Event {
	r := repos[rng.IntN(len(repos))]
	commit := func() *eventlog.Event {
		ev := r.Commit(clock, r.RandomOps(rng, clock, 4), 0)
		ev.Commit.Blocks = randBytes(rng, rng.IntN(crashMaxBlocks))
		// Repo numbers commits from 0 in every process; keep CIDs unique.
		ev.Commit.Commit = eventlogtest.CID(fmt.Sprintf("%s/%s/commit", r.DID, ev.Commit.Rev))
		return ev
	}
	private := func() *eventlog.Event {
		return &eventlog.Event{Kind: eventlog.KindPrivate, DID: r.DID, Private: &eventlog.Private{
			Type: "test.crash", Secret: rng.IntN(2) == 0, Data: randBytes(rng, 1+rng.IntN(256))}}
	}
	switch k := rng.IntN(100); {
	case k < 60 || r.Rev == "":
		return []*eventlog.Event{commit()}
	case k < 68:
		rev := clock.Next()
		data := eventlogtest.CID(fmt.Sprintf("%s/%s/data", r.DID, rev))
		r.Rev, r.Data = rev, data
		return []*eventlog.Event{{Kind: eventlog.KindSync, DID: r.DID, Sync: &eventlog.Sync{
			Rev: rev, Commit: eventlogtest.CID(fmt.Sprintf("%s/%s/commit", r.DID, rev)), Data: data,
			Blocks: randBytes(rng, 64)}}}
	case k < 78:
		return []*eventlog.Event{{Kind: eventlog.KindIdentity, DID: r.DID, Identity: &eventlog.Identity{
			Handle: syntax.Handle(fmt.Sprintf("h%d-%d.test", n, rng.IntN(1000)))}}}
	case k < 88:
		return []*eventlog.Event{private()}
	default:
		acct := &eventlog.Event{Kind: eventlog.KindAccount, DID: r.DID, Account: &eventlog.Account{Active: rng.IntN(2) == 0}}
		if !acct.Account.Active {
			acct.Account.Status = "deactivated"
		}
		return []*eventlog.Event{commit(), acct, private()}
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	return b[:n:n]
}

// childProc is one run of this test binary as a helper child process,
// which reports on stdout: "OPEN head" once the log is open, "ACK ..." for
// every acknowledged event (see ackLine) and "DONE ..." when it finished.
type childProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	opened chan struct{} // closed when the child printed OPEN
	eof    chan struct{} // closed when stdout is drained

	mu    sync.Mutex
	acks  []ack
	bad   []string
	done  []string
	nopen int
}

// startChild runs the test named run in a child process with env added.
func startChild(t *testing.T, run string, env ...string) *childProc {
	t.Helper()
	c := &childProc{opened: make(chan struct{}), eof: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.eof)
		br := bufio.NewReader(out)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				// A partial last line was cut by the kill: the event may or
				// may not have been acknowledged; claim nothing about it.
				return
			}
			c.mu.Lock()
			switch {
			case strings.HasPrefix(line, "ACK "):
				if a, err := parseAck(line); err != nil {
					c.bad = append(c.bad, err.Error())
				} else {
					c.acks = append(c.acks, a)
				}
			case strings.HasPrefix(line, "DONE"):
				c.done = append(c.done, strings.TrimSpace(line))
			case strings.HasPrefix(line, "OPEN "):
				c.nopen++
				if c.nopen == 1 {
					close(c.opened)
				}
			default:
				// testing framework chatter; ignore
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// kill SIGKILLs the child and waits until it is gone and its output read.
func (c *childProc) kill(t *testing.T) {
	t.Helper()
	killErr := c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.eof
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child: wait: %v (kill: %v)\nstderr:\n%s", err, killErr, c.stderr.String())
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by itself (%v), not by our SIGKILL:\n%s", err, c.stderr.String())
	}
	if strings.Contains(c.stderr.String(), "DATA RACE") {
		t.Fatalf("race detected in child:\n%s", c.stderr.String())
	}
	if len(c.bad) > 0 {
		t.Fatalf("child printed malformed lines: %q", c.bad)
	}
}

// crashState is what the parent knows about the log across cycles.
type crashState struct {
	known      map[eventlog.Seq]string // digest of every seq known to be durable
	lastAcked  map[syntax.DID]ack      // newest acknowledged head-moving event per repo
	maxAcked   eventlog.Seq
	totalAcks  int
	earlyKills int
}

func TestCrashKill9(t *testing.T) {
	// A tiered test (projections/testenv): -short skips it, CI refuses that.
	if testing.Short() {
		if os.Getenv("PDSLOG_NO_SKIP") != "" {
			t.Fatal("-short with PDSLOG_NO_SKIP set")
		}
		t.Skip("-short: kills child processes")
	}
	cycles := *crashCycles
	if s := os.Getenv("PDSLOG_CRASH_CYCLES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("PDSLOG_CRASH_CYCLES: %v", err)
		}
		cycles = n
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d cycles", seed, cycles)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	st := &crashState{known: map[eventlog.Seq]string{}, lastAcked: map[syntax.DID]ack{}}

	for cycle := range cycles {
		c := startChild(t, "TestHelperChild", crashChildEnv+"="+dir)
		var delay time.Duration
		if rng.IntN(6) == 0 {
			// Kill at any moment, possibly while the child is still
			// starting up or recovering the log.
			delay = time.Duration(rng.Int64N(int64(60 * time.Millisecond)))
			st.earlyKills++
		} else {
			// Kill while the appenders are running.
			select {
			case <-c.opened:
			case <-c.eof:
				c.kill(t) // reports why the child died
			}
			delay = time.Duration(rng.Int64N(int64(150 * time.Millisecond)))
		}
		time.Sleep(delay) // a random kill moment, not synchronisation
		c.kill(t)

		for _, a := range c.acks {
			if d, ok := st.known[a.seq]; ok && d != a.digest {
				t.Fatalf("cycle %d: child acknowledged seq %d again with other content", cycle, a.seq)
			}
			st.known[a.seq] = a.digest
			st.maxAcked = max(st.maxAcked, a.seq)
			if a.rev != "" {
				if prev, ok := st.lastAcked[a.did]; !ok || a.seq > prev.seq {
					st.lastAcked[a.did] = a
				}
			}
		}
		st.totalAcks += len(c.acks)
		verifyAfterCrash(t, dir, cycle, st)
	}
	t.Logf("%d cycles (%d killed at a random moment from exec), %d acknowledged events, log head %d",
		cycles, st.earlyKills, st.totalAcks, len(st.known))
	if st.totalAcks == 0 {
		t.Fatal("no child ever acknowledged an append: the test proved nothing")
	}
}

// verifyAfterCrash reopens the log after a kill and checks it against what
// was acknowledged, then appends one event itself.
func verifyAfterCrash(t *testing.T, dir string, cycle int, st *crashState) {
	t.Helper()
	ctx := t.Context()
	l, err := eventlog.Open(dir, &eventlog.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatalf("cycle %d: reopen: %v", cycle, err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Fatalf("cycle %d: close: %v", cycle, err)
		}
	}()
	head := l.Head()
	if head < st.maxAcked {
		t.Fatalf("cycle %d: head %d after crash, but seq %d was acknowledged", cycle, head, st.maxAcked)
	}

	type repoState struct {
		rev          syntax.TID
		commit, data cid.Cid
		seq          eventlog.Seq
	}
	repos := map[syntax.DID]*repoState{}
	it, err := l.Iter(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := eventlog.Seq(0)
	for it.Next() {
		ev := it.Event()
		n++
		if ev.Seq != n {
			t.Fatalf("cycle %d: seq %d where %d was expected: gap", cycle, ev.Seq, n)
		}
		d := digest(ev)
		if want, ok := st.known[ev.Seq]; ok && want != d {
			t.Fatalf("cycle %d: seq %d changed content after crash (%s: %s)", cycle, ev.Seq, ev.Kind, ev.DID)
		}
		st.known[ev.Seq] = d // durable now: Open flushed whatever it recovered

		r := repos[ev.DID]
		if r == nil {
			r = &repoState{}
			repos[ev.DID] = r
		}
		switch ev.Kind {
		case eventlog.KindCommit:
			c := ev.Commit
			if c.Since != r.rev || c.Rev <= r.rev {
				t.Fatalf("cycle %d: seq %d: commit of %s since %q rev %q does not chain from %q",
					cycle, ev.Seq, ev.DID, c.Since, c.Rev, r.rev)
			}
			if r.seq != 0 && !c.PrevData.Equals(r.data) {
				t.Fatalf("cycle %d: seq %d: prevData %s, previous data %s", cycle, ev.Seq, c.PrevData, r.data)
			}
			*r = repoState{rev: c.Rev, commit: c.Commit, data: c.Data, seq: ev.Seq}
		case eventlog.KindSync:
			if ev.Sync.Rev <= r.rev {
				t.Fatalf("cycle %d: seq %d: sync of %s rev %q not after %q", cycle, ev.Seq, ev.DID, ev.Sync.Rev, r.rev)
			}
			*r = repoState{rev: ev.Sync.Rev, commit: ev.Sync.Commit, data: ev.Sync.Data, seq: ev.Seq}
		}
	}
	if err := it.Close(); err != nil {
		t.Fatalf("cycle %d: iterate: %v", cycle, err)
	}
	if n != head {
		t.Fatalf("cycle %d: iterated %d events, head %d", cycle, n, head)
	}
	for s := range st.known {
		if s > head {
			t.Fatalf("cycle %d: seq %d was durable or acknowledged but the log ends at %d", cycle, s, head)
		}
	}

	for did, r := range repos {
		if r.seq == 0 {
			continue // no commit or sync
		}
		h, err := l.RepoHead(ctx, did)
		if err != nil {
			t.Fatalf("cycle %d: RepoHead(%s): %v", cycle, did, err)
		}
		if h.Rev != r.rev || h.Seq != r.seq || !h.Commit.Equals(r.commit) || !h.Data.Equals(r.data) {
			t.Fatalf("cycle %d: RepoHead(%s) = %+v, but the log's last commit is rev %s seq %d", cycle, did, h, r.rev, r.seq)
		}
	}
	for did, a := range st.lastAcked {
		h, err := l.RepoHead(ctx, did)
		if err != nil {
			t.Fatalf("cycle %d: RepoHead(%s) after ack of seq %d: %v", cycle, did, a.seq, err)
		}
		if h.Seq < a.seq || h.Rev < a.rev {
			t.Fatalf("cycle %d: RepoHead(%s) = rev %s seq %d, older than acknowledged rev %s seq %d",
				cycle, did, h.Rev, h.Seq, a.rev, a.seq)
		}
		if h.Seq == a.seq && h.Commit.String() != a.commit {
			t.Fatalf("cycle %d: RepoHead(%s) commit %s, acknowledged %s", cycle, did, h.Commit, a.commit)
		}
	}

	// The log goes on at head+1.
	ev := &eventlog.Event{Kind: eventlog.KindIdentity, DID: "did:plc:crashparent",
		Identity: &eventlog.Identity{Handle: syntax.Handle(fmt.Sprintf("cycle%d.test", cycle))}}
	seq, err := l.Append(ctx, ev)
	if err != nil || seq != head+1 {
		t.Fatalf("cycle %d: append after crash: seq %d err %v, want %d", cycle, seq, err, head+1)
	}
	st.known[seq] = digest(ev)
	st.maxAcked = max(st.maxAcked, seq)
}
