package plcserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/pdslog/pdslog/projections/testenv"
	"github.com/pdslog/pdslog/projections/testenv/npm"
)

// Timeouts: generous, for a loaded 2-core CI machine.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 5 * time.Second
)

// Server is a running PLC directory.
type Server struct {
	// URL is its base URL, e.g. "http://127.0.0.1:40123".
	URL string

	proc *npm.Process
}

// Start starts a PLC directory for t, with an empty in-memory database,
// and stops it when t's cleanup runs. Each call starts its own server.
// Any failure (node or npm missing, `npm ci` failing, the server not
// coming up within 30s) fails t.
func Start(t testing.TB) *Server {
	t.Helper()
	testenv.Slow(t, "runs a PLC directory under Node.js")
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if err := npm.Install(dir); err != nil {
		t.Fatalf("plcserver: %v", err)
	}
	node, err := npm.Tool("PDSLOG_NODE", "node")
	if err != nil {
		t.Fatalf("plcserver: tests that need a PLC directory run the npm package @did-plc/server under Node.js: %v", err)
	}

	// PLC_EXIT_ON_STDIN_EOF: the server exits when its stdin closes.
	proc, port, err := npm.StartProcess(npm.ProcessSpec{Node: node, Dir: dir, Script: "server.js", Args: []string{"0"},
		Env:   []string{"PLC_HOST=127.0.0.1", "PLC_EXIT_ON_STDIN_EOF=1", "LOG_ENABLED=" + logEnabled()},
		Ready: readyLine, ReadyTimeout: readyTimeout, StopTimeout: stopTimeout})
	if err != nil {
		t.Fatalf("plcserver: %v", err)
	}
	s := &Server{URL: "http://127.0.0.1:" + port, proc: proc}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("plcserver %s output:\n%s", s.URL, proc.Output())
		}
	})
	if err := health(s.URL); err != nil {
		t.Fatalf("plcserver: %v; its output:\n%s", err, proc.Output())
	}
	return s
}

// Close stops the server (it is also stopped at the test's cleanup).
func (s *Server) Close() { _ = s.proc.Stop() }

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

var readyLine = regexp.MustCompile(`^PLC_LISTENING ([0-9]{1,5})$`)

// Dir is the directory holding server.js, package.json and node_modules:
// $PDSLOG_PLCSERVER_DIR, or this source file's directory.
func Dir() (string, error) {
	dir, err := npm.PackageDir("PDSLOG_PLCSERVER_DIR", "server.js")
	if err != nil {
		return "", fmt.Errorf("plcserver: %w", err)
	}
	return dir, nil
}
