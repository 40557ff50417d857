package mirror_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pdslog/pdslog/eventlog/blobstore/s3"
	"github.com/pdslog/pdslog/projections/mirror"
	"github.com/pdslog/pdslog/projections/mirror/d1"
)

const childEnv = "PDSLOG_MIRROR_CHILD"

// childConfig is what the crash test's child mirrors, and where to.
type childConfig struct {
	Dir, APIBase, Account, Token, DB, R2 string
	MaxStatements                        int
}

// mirrorChild runs the mirror over cfg's log to its head, as `pdslog
// mirror --once` does, printing "request N" after each D1 request.
func mirrorChild(raw string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Println("config:", err)
		return 3
	}
	t := &childT{}
	l := openLog(t, cfg.Dir)
	defer l.Close()
	store := openDisk(t, cfg.Dir)
	db, err := d1.New(d1.Options{APIBase: cfg.APIBase, AccountID: cfg.Account, DatabaseID: cfg.DB, Token: cfg.Token, Budget: -1, Logger: quiet,
		HTTPClient: &http.Client{Transport: announce{http.DefaultTransport}}})
	if err != nil {
		fmt.Println(err)
		return 3
	}
	open := func(prefix string) *s3.Store {
		st, err := s3.New(s3.Options{Bucket: bucket, Endpoint: cfg.R2, ForcePathStyle: true, AccessKeyID: "r2-key", SecretAccessKey: "r2-secret", KeyPrefix: prefix})
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		return st
	}
	m, err := mirror.New(mirror.Options{D1: db, Blobs: open("blobs/"), Blocks: open("blockstore/"), Local: store,
		InlineLimit: testInline, MaxStatements: cfg.MaxStatements, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return 3
	}
	if err := catchUp(context.Background(), l, m, 50); err != nil {
		fmt.Println("mirror:", err)
		return 1
	}
	fmt.Println("done", m.Stats().Requests)
	return 0
}

// announce prints a line after each D1 response, for the parent to time
// its kill by.
type announce struct{ rt http.RoundTripper }

func (a announce) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.rt.RoundTrip(r)
	fmt.Println("d1 response")
	return resp, err
}

// childT fails a child by exiting.
type childT struct{ testing.TB }

func (childT) Helper() {}
func (childT) Fatal(args ...any) {
	fmt.Println(args...)
	os.Exit(3)
}

// TestCrashAndRerun kills the mirror with SIGKILL at random points while
// it writes (a child process running it in many small requests), reruns
// it each time, and at the end every table equals the local projections:
// no row lost or duplicated, the cursor at the last seq, R2 exactly the
// objects the rows name.
func TestCrashAndRerun(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t, dir, 3, 4)
	w.build(t, 220, true)
	w.flush()
	head := w.log.Head()
	w.log.Close()
	tg := newTarget(t)
	cfg, _ := json.Marshal(childConfig{Dir: dir, APIBase: tg.apiBase, Account: emu.Account, Token: emu.Token, DB: tg.db,
		R2: tg.r2.URL, MaxStatements: 10})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	// run runs the child; with kill > 0 it SIGKILLs it at a random moment
	// after the kill-th D1 response.
	run := func(kill int) (bool, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var lines []string
		sc := bufio.NewScanner(out)
		responses := 0
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if sc.Text() == "d1 response" {
				responses++
				if responses == kill {
					// Now, or while the next request is in flight.
					time.Sleep(time.Duration(rng.IntN(8000)) * time.Microsecond)
					cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}
		err = cmd.Wait()
		text := strings.Join(lines, "\n")
		if err == nil {
			if !strings.HasPrefix(lines[len(lines)-1], "done") {
				t.Fatalf("child exited 0 saying %q", text)
			}
			return true, text
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child failed: %v: %s", err, text)
		}
		return false, text
	}
	kills := 0
	for {
		done, out := run(4 + rng.IntN(12))
		if done {
			t.Logf("%d events; killed %d times, then the run finished (%s)", head, kills, out[strings.LastIndex(out, "\n")+1:])
			break
		}
		kills++
		if kills > 200 {
			t.Fatal("the mirror never finished")
		}
	}
	if kills < 3 {
		t.Errorf("killed only %d times: the test did not test", kills)
	}
	l := openLog(t, dir)
	defer l.Close()
	localBlobs.Store(l, openDisk(t, dir))
	checkMirror(t, l, tg.client(t, nil), tg.r2, testInline)
}
