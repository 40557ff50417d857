package plcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeouts: generous, for a loaded 2-core CI machine.
const (
	installTimeout = 5 * time.Minute
	readyTimeout   = 30 * time.Second
	stopTimeout    = 5 * time.Second
)

// Server is a running PLC directory.
type Server struct {
	// URL is its base URL, e.g. "http://127.0.0.1:40123".
	URL string

	cmd       *exec.Cmd
	stdin     io.WriteCloser
	out       *output
	exited    chan struct{}
	waitErr   error
	closeOnce sync.Once
}

// Start starts a PLC directory for t, with an empty in-memory database,
// and stops it when t's cleanup runs. Each call starts its own server.
// Any failure (node or npm missing, `npm ci` failing, the server not
// coming up within 30s) fails t.
func Start(t testing.TB) *Server {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureInstalled(dir); err != nil {
		t.Fatal(err)
	}
	node, err := tool("PDSLOG_NODE", "node")
	if err != nil {
		t.Fatal(err)
	}

	s := &Server{out: newOutput(), exited: make(chan struct{})}
	cmd := exec.Command(node, filepath.Join(dir, "server.js"), "0")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLC_HOST=127.0.0.1", "PLC_EXIT_ON_STDIN_EOF=1", "LOG_ENABLED="+logEnabled())
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	// The server exits when its stdin closes: on Close, and when this
	// process dies, however it dies.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("plcserver: starting %s: %v", node, err)
	}
	s.cmd, s.stdin = cmd, stdin
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("plcserver %s output:\n%s", s.URL, s.out.String())
		}
	})

	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	select {
	case port := <-s.out.ready:
		s.URL = "http://127.0.0.1:" + port
	case <-s.exited:
		t.Fatalf("plcserver: %s server.js exited before it was ready (%v); its output:\n%s", node, s.waitErr, s.out.String())
	case <-deadline.C:
		s.Close()
		t.Fatalf("plcserver: not ready after %v; its output:\n%s", readyTimeout, s.out.String())
	}
	if err := health(s.URL); err != nil {
		t.Fatalf("plcserver: %v; its output:\n%s", err, s.out.String())
	}
	return s
}

// Close stops the server (it is also stopped at the test's cleanup).
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.stdin.Close()
		select {
		case <-s.exited:
			return
		case <-time.After(stopTimeout):
		}
		s.cmd.Process.Kill()
		<-s.exited
	})
}

func health(base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: %s: %s", resp.Status, b)
	}
	return nil
}

func logEnabled() string {
	if os.Getenv("PDSLOG_PLC_LOG") == "1" {
		return "true"
	}
	return "false"
}

// output collects the server's stdout and stderr, and reports the port
// of its ready line.
type output struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	line  []byte
	ready chan string
	seen  bool
}

var readyLine = regexp.MustCompile(`^PLC_LISTENING ([0-9]{1,5})$`)

func newOutput() *output { return &output{ready: make(chan string, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.buf.Len() < 1<<20 {
		o.buf.Write(p)
	}
	for _, c := range p {
		if c != '\n' {
			if len(o.line) < 4096 {
				o.line = append(o.line, c)
			}
			continue
		}
		if m := readyLine.FindSubmatch(bytes.TrimSpace(o.line)); m != nil && !o.seen {
			o.seen = true
			o.ready <- string(m[1])
		}
		o.line = o.line[:0]
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Dir is the directory holding server.js, package.json and node_modules:
// $PDSLOG_PLCSERVER_DIR, or this source file's directory.
func Dir() (string, error) {
	if d := os.Getenv("PDSLOG_PLCSERVER_DIR"); d != "" {
		return d, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("plcserver: cannot locate the plcserver directory; set PDSLOG_PLCSERVER_DIR")
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(dir, "server.js")); err != nil {
		return "", fmt.Errorf("plcserver: no server.js in %s (built with -trimpath?); set PDSLOG_PLCSERVER_DIR: %w", dir, err)
	}
	return dir, nil
}

func tool(env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("plcserver: %s not found on PATH (set %s): tests that need a PLC directory run the npm package @did-plc/server under Node.js (>= 20) and install it with npm: install Node.js and npm: %w", name, env, err)
	}
	return p, nil
}

var (
	installOnce sync.Once
	installErr  error
)

// ensureInstalled runs `npm ci` in dir unless node_modules already holds
// exactly what package-lock.json pins. Test binaries of several packages
// may run at once: the check and the install happen under a file lock.
func ensureInstalled(dir string) error {
	installOnce.Do(func() {
		installErr = install(dir)
	})
	return installErr
}

func install(dir string) error {
	unlock, err := lockFile(filepath.Join(dir, ".npm-ci.lock"))
	if err != nil {
		return fmt.Errorf("plcserver: locking %s: %w", dir, err)
	}
	defer unlock()
	why, err := needsInstall(dir)
	if err != nil {
		return err
	}
	if why == "" {
		return nil
	}
	npm, err := tool("PDSLOG_NPM", "npm")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("plcserver: %s, and `npm ci` in %s failed (run it there by hand to see why): %v\n%s", why, dir, err, out)
	}
	if why, err := needsInstall(dir); err != nil || why != "" {
		return fmt.Errorf("plcserver: after `npm ci` in %s: %s %v", dir, why, err)
	}
	return nil
}

// needsInstall says why node_modules must be (re)installed, or "" if it
// matches package-lock.json: every locked package is installed at its
// locked version, per npm's own record (node_modules/.package-lock.json).
func needsInstall(dir string) (string, error) {
	want, err := lockedVersions(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", fmt.Errorf("plcserver: %w", err)
	}
	have, err := lockedVersions(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "node_modules is not installed", nil
	}
	if err != nil {
		return "node_modules is unreadable (" + err.Error() + ")", nil
	}
	for path, v := range want {
		if have[path] != v {
			return fmt.Sprintf("node_modules differs from package-lock.json (%s: have %q, want %q)", path, have[path], v), nil
		}
	}
	return "", nil
}

func lockedVersions(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	out := map[string]string{}
	for path, p := range lock.Packages {
		if strings.HasPrefix(path, "node_modules/") {
			out[path] = p.Version
		}
	}
	return out, nil
}
