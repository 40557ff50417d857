package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/projectiontest"
	"github.com/pdslog/pdslog/projections/repos"
	"github.com/pdslog/pdslog/projections/testenv"
)

const crashChildEnv = "PDSLOG_CRASH_CHILD_DIR"

// TestMain runs crashChild instead of the tests when the crash test starts
// this binary as its child.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if args := os.Getenv(serveChildEnv); args != "" {
		serveChild(strings.Split(args, "\x1f"))
		return
	}
	os.Exit(m.Run())
}

// crashChild is the child of TestCrashProjectionsConverge: it holds the
// data dir like serve does (projections following the log, writers calling
// CatchUp for read-your-writes) and appends until it is killed, printing
// "ack SEQ" for every acknowledged append.
func crashChild(dir string) {
	d, err := pds.Open(dir, &pds.Options{Command: "crash-child", Logger: discardLogger()})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	if err := d.Runner.CatchUp(ctx, d.Log.Head()); err != nil {
		fmt.Println("catch up:", err)
		os.Exit(3)
	}
	go d.Runner.Run(ctx)
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			st := committest.NewStream(uint64(w), 1)
			repo := st.Repos[0]
			repo.DID = eventlogtest.DID(w)
			b := commit.NewBuilder(nil)
			if _, err := d.Log.Append(ctx, commit.SigningKeyEvent(repo.DID, repo.Key)); err != nil {
				fmt.Println("append key:", err)
				os.Exit(3)
			}
			for {
				var head *eventlog.RepoHead
				if h, err := d.Log.RepoHead(ctx, repo.DID); err == nil {
					head = &h
				}
				writes := st.RandomWrites(repo, 1+rand.IntN(3))
				res, err := b.Build(ctx, commit.Repo{DID: repo.DID, Head: head, Key: repo.Key, Blocks: d.Blocks.Source(repo.DID)}, writes)
				if err != nil {
					fmt.Println("build:", err)
					os.Exit(3)
				}
				seq, err := d.Log.Append(ctx, res.Event)
				if err != nil {
					fmt.Println("append:", err)
					os.Exit(3)
				}
				if err := d.Runner.CatchUp(ctx, seq); err != nil {
					fmt.Println("catch up:", err)
					os.Exit(3)
				}
				for i, w := range writes {
					if w.Action == eventlog.ActionDelete {
						delete(repo.Records, w.Path())
					} else {
						repo.Records[w.Path()] = res.Writes[i].CID
					}
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d\n", seq)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashProjectionsConverge kills a process that appends and projects
// with SIGKILL at random moments; after every restart each acknowledged
// append is in the log, the log verifies, and the projections caught up
// from where the crash left them equal a clean replay.
func TestCrashProjectionsConverge(t *testing.T) {
	testenv.Slow(t, "kills child processes")
	cycles := 20
	if v, err := strconv.Atoi(os.Getenv("PDSLOG_CRASH_CYCLES")); err == nil {
		cycles = v
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var maxAck eventlog.Seq
	for cycle := range cycles {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan eventlog.Seq, 1<<16)
		lines := make(chan string, 16)
		go func() {
			defer close(acks)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				if s, ok := strings.CutPrefix(line, "ack "); ok {
					n, _ := strconv.ParseUint(s, 10, 64)
					acks <- eventlog.Seq(n)
				} else {
					select {
					case lines <- line:
					default:
					}
				}
			}
		}()
		// Let it acknowledge something, then kill it at a random moment.
		select {
		case s, ok := <-acks:
			if !ok {
				cmd.Wait()
				var said string
				select {
				case said = <-lines:
				default:
				}
				t.Fatalf("cycle %d: child exited before acknowledging: %s %s", cycle, said, stderr.String())
			}
			maxAck = max(maxAck, s)
		case <-time.After(60 * time.Second):
			t.Fatalf("cycle %d: child acknowledged nothing in 60s", cycle)
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond) // a random kill point, not synchronisation
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		for s := range acks {
			maxAck = max(maxAck, s)
		}

		d, err := pds.Open(dir, &pds.Options{Command: "test", Logger: discardLogger()})
		if err != nil {
			t.Fatalf("cycle %d: reopen: %v", cycle, err)
		}
		if head := d.Log.Head(); head < maxAck {
			d.Close()
			t.Fatalf("cycle %d: log head %d lost acknowledged seq %d", cycle, head, maxAck)
		}
		if err := d.Log.Verify(t.Context(), &eventlog.VerifyOptions{Check: commit.NewVerifier().Check}); err != nil {
			d.Close()
			t.Fatalf("cycle %d: verify: %v", cycle, err)
		}
		if err := d.Runner.CatchUp(t.Context(), d.Log.Head()); err != nil {
			d.Close()
			t.Fatalf("cycle %d: catch up: %v", cycle, err)
		}
		got := projectiontest.Digest(t, d.Store, d.Repos)
		fresh, err := projections.OpenStore(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		fp := repos.New(fresh)
		if err := projections.NewRunner(d.Log, []projections.Projection{fp}, nil).CatchUp(t.Context(), d.Log.Head()); err != nil {
			t.Fatal(err)
		}
		want := projectiontest.Digest(t, fresh, fp)
		fresh.Close()
		head := d.Log.Head()
		d.Close()
		if !bytes.Equal(got, want) {
			t.Fatalf("cycle %d: projection after crash + catch-up differs from a clean replay (head %d)", cycle, head)
		}
		t.Logf("cycle %d: head %d, max acknowledged %d", cycle, head, maxAck)
	}
	if maxAck == 0 {
		t.Fatal("nothing was acknowledged: the test proved nothing")
	}
}
