package worker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/projections/testenv/npm"
)

// Timeouts: generous, for a loaded 2-core CI machine.
const (
	readyTimeout = 90 * time.Second
	stopTimeout  = 10 * time.Second
)

// Cloudflare settings the harness and the mirror share.
const (
	cfAccount = "0123456789abcdef0123456789abcdef"
	cfToken   = "edge-test-token"
	r2Bucket  = "pdslog-mirror"
	r2Key     = "edge-r2-key"
	r2Secret  = "edge-r2-secret"
	adminPass = "edge-admin-password"
	d1ID      = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
)

// pkgDir is this package's directory: package.json, wrangler.jsonc, src/.
func pkgDir(t testing.TB) string {
	t.Helper()
	dir, err := npm.PackageDir("PDSLOG_EDGE_DIR", "wrangler.jsonc")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// pdslogBinary is the pdslog command, built once per test binary (with
// the race detector when this binary has it, which reuses the packages
// `go test -race` compiled), or $PDSLOG_BIN.
func pdslogBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PDSLOG_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go tool builds the pdslog binary these tests run (or set PDSLOG_BIN): %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "pdslog-edge-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "pdslog")
		args := []string{"build", "-o", buildBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goTool, append(args, "github.com/pdslog/pdslog/cmd/pdslog")...)
		cmd.Dir = pkgDir(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build pdslog: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// edge is the Worker under Miniflare, with the harness serving D1's REST
// API and R2's S3 API over its database and bucket.
type edge struct {
	URL     string // the Worker, behind Miniflare's entry (as wrangler dev serves it)
	Harness string // D1 REST (/client/v4) and S3 (path-style) APIs
	Direct  string // the Worker on its own workerd socket
	proc    *npm.Process
}

var edgeReady = regexp.MustCompile(`^EDGE_LISTENING (http://127\.0\.0\.1:[0-9]+ http://127\.0\.0\.1:[0-9]+ http://127\.0\.0\.1:[0-9]+)$`)

// startEdge starts the Worker with origin as its ORIGIN and vars over
// wrangler.jsonc's.
func startEdge(t testing.TB, origin string, vars map[string]string) *edge {
	t.Helper()
	dir := pkgDir(t)
	if err := npm.Install(dir); err != nil {
		t.Fatalf("edge: %v", err)
	}
	node, err := npm.Tool("PDSLOG_NODE", "node")
	if err != nil {
		t.Fatalf("edge: the Worker runs under Miniflare, an npm package, under Node.js: %v", err)
	}
	v, _ := json.Marshal(vars)
	proc, urls, err := npm.StartProcess(npm.ProcessSpec{Node: node, Dir: dir, Script: "test/server.mjs",
		Env: []string{"EDGE_ORIGIN=" + origin, "EDGE_VARS=" + string(v), "EDGE_DATABASE=" + d1ID, "EDGE_BUCKET=" + r2Bucket,
			"EDGE_TOKEN=" + cfToken, "EDGE_ACCOUNT=" + cfAccount, "EDGE_S3_KEY=" + r2Key},
		Ready: edgeReady, ReadyTimeout: readyTimeout, StopTimeout: stopTimeout})
	if err != nil {
		t.Fatalf("edge: %v", err)
	}
	u := strings.Fields(urls)
	e := &edge{URL: u[0], Harness: u[1], Direct: u[2], proc: proc}
	t.Cleanup(func() {
		proc.Stop()
		if t.Failed() {
			t.Logf("edge output (last 8 KiB):\n%s", tail(proc.Output(), 8<<10))
		}
	})
	return e
}

// freePort is a port nothing listens on (now).
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pds is a `pdslog serve` process mirroring into the edge's D1 and R2.
type pds struct {
	URL       string // http://127.0.0.1:PORT
	PublicURL string // its describeRepo serviceEndpoint
	// MetricsURL is its operator listener (--metrics-addr): /metrics is
	// not on the public port.
	MetricsURL string
	cmd        *exec.Cmd
	mu         sync.Mutex
	out        bytes.Buffer
}

func (p *pds) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out.Len() < 4<<20 {
		p.out.Write(b)
	}
	return len(b), nil
}

func (p *pds) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startPDS runs `pdslog serve` on port with a fresh data dir, a PLC
// directory, admin credentials and the mirror inside it.
func startPDS(t testing.TB, e *edge, plc *plcserver.Server, port int) *pds {
	t.Helper()
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := &pds{URL: fmt.Sprintf("http://127.0.0.1:%d", port), PublicURL: fmt.Sprintf("http://localhost:%d", port), MetricsURL: "http://" + metrics}
	cmd := exec.Command(pdslogBinary(t), "serve", "--data-dir", t.TempDir(), "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--plc-url", plc.URL, "--invite-required=false", "--rate-limits=false", "--admin-password", adminPass,
		"--log-format", "json", "--mirror-cloudflare", "--blob-grace", "24h", "--metrics-addr", metrics)
	cmd.Env = append(os.Environ(),
		"CLOUDFLARE_ACCOUNT_ID="+cfAccount, "CLOUDFLARE_API_TOKEN="+cfToken, "CLOUDFLARE_API_BASE_URL="+e.Harness+"/client/v4",
		"PDS_D1_DATABASE_ID="+d1ID, "PDS_R2_BUCKET="+r2Bucket, "PDS_R2_ENDPOINT="+e.Harness,
		"PDS_R2_ACCESS_KEY_ID="+r2Key, "PDS_R2_SECRET_ACCESS_KEY="+r2Secret, "PDSLOG_CF_REQUEST_BUDGET=-1")
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("pdslog output (last 8 KiB):\n%s", tail(p.output(), 8<<10))
		}
	})
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := http.Get(p.URL + "/xrpc/_health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pdslog serve not healthy after %v: %v\n%s", readyTimeout, err, tail(p.output(), 8<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// headSeq is the log's head, from pdslog's metrics on the operator listener.
func (p *pds) headSeq(t testing.TB) uint64 {
	t.Helper()
	resp, err := http.Get(p.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "pdslog_log_head_seq "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return uint64(f)
		}
	}
	t.Fatalf("no pdslog_log_head_seq in /metrics (%v)", sc.Err())
	return 0
}

// health is the Worker's /xrpc/_health.
type health struct {
	Mirror     string  `json:"mirror"`
	Cursor     uint64  `json:"cursor"`
	Head       uint64  `json:"head"`
	Lag        uint64  `json:"lag"`
	UpdatedAt  string  `json:"updatedAt"`
	AgeSeconds float64 `json:"ageSeconds"`
}

// waitMirrored waits until the mirror has applied the log's head, as the
// Worker's _health reports it.
func waitMirrored(t testing.TB, p *pds, e *edge) health {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		head := p.headSeq(t)
		var h health
		resp, err := http.Get(e.URL + "/xrpc/_health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if err := json.Unmarshal(b, &h); err != nil {
					t.Fatalf("_health: %v: %s", err, b)
				}
				if h.Cursor == head {
					return h
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror did not reach the log's head %d: %+v %v", head, h, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// client makes XRPC calls to a base URL.
type client struct {
	t    testing.TB
	base string
}

// call makes one request and returns its status and body; body is JSON
// (or raw bytes with ct).
func (c client) call(method, path, token string, body any, ct string) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
		ct = "application/json"
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	switch {
	case token == "admin":
		req.SetBasicAuth("admin", adminPass)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, out
}

// must is call that fails the test unless the status is 200, decoding
// the JSON answer into out (when not nil).
func (c client) must(method, path, token string, body any, ct string, out any) {
	c.t.Helper()
	st, b := c.call(method, path, token, body, ct)
	if st != 200 {
		c.t.Fatalf("%s %s: %d %s", method, path, st, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}
