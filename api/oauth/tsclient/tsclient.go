// Package tsclient runs client.mjs: the official atproto OAuth client for
// Node.js, @atproto/oauth-client-node (pinned by package-lock.json), on the
// Node.js 22 that the "node" npm package provides (the client needs
// Node >= 22; the machine's node may be older), signing in to a pdslog
// server and using its DPoP-bound tokens. Run it by hand with
//
//	npm ci --prefix api/oauth/tsclient
//	PDSLOG_PDS_URL=http://localhost:2583 PDSLOG_PLC_URL=… PDSLOG_HANDLE=alice.test \
//	PDSLOG_PASSWORD=… PDSLOG_CALLBACK=http://127.0.0.1:8787/callback \
//	  api/oauth/tsclient/node_modules/node/bin/node api/oauth/tsclient/client.mjs
//
// against a `pdslog serve --hostname localhost --port 2583` whose account
// alice.test exists; the Go test TestServeOAuthTypeScript does all that.
package tsclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/projections/testenv"
	"github.com/pdslog/pdslog/projections/testenv/npm"
)

// Step is one line of the script's output.
type Step struct {
	Name    string          `json:"step"`
	OK      bool            `json:"ok"`
	Details json.RawMessage `json:"details,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// Steps are the steps client.mjs runs, in order.
var Steps = []string{"authorize", "pages", "callback", "createRecord", "getSession", "scopeRefused", "refresh", "signOut", "summary"}

// Run runs client.mjs against the PDS at pdsURL (its issuer, an http
// localhost URL) whose accounts are in the PLC directory at plcURL, signing
// in as handle. It fails t if the script cannot run, exits non-zero or a
// step fails, and returns the steps.
func Run(t testing.TB, pdsURL, plcURL, handle, password string) []Step {
	t.Helper()
	testenv.Slow(t, "runs @atproto/oauth-client-node under Node.js 22")
	dir, err := npm.PackageDir("PDSLOG_TSCLIENT_DIR", "client.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := npm.Install(dir); err != nil {
		t.Fatalf("tsclient: %v", err)
	}
	node := filepath.Join(dir, "node_modules", "node", "bin", "node")
	if _, err := os.Stat(node); err != nil {
		t.Fatalf("tsclient: the node package's Node.js is missing (npm ci --prefix %s): %v", dir, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PDSLOG_PDS_URL="+pdsURL, "PDSLOG_PLC_URL="+plcURL, "PDSLOG_HANDLE="+handle,
		"PDSLOG_PASSWORD="+password, "PDSLOG_CALLBACK=http://127.0.0.1:8787/callback")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var steps []Step
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var s Step
		if err := json.Unmarshal([]byte(line), &s); err != nil || s.Name == "" {
			t.Errorf("tsclient: not a step: %q", line)
			continue
		}
		if !s.OK {
			t.Errorf("tsclient: step %s failed: %s", s.Name, s.Error)
		}
		steps = append(steps, s)
	}
	if runErr != nil {
		t.Errorf("tsclient: client.mjs: %v\nstderr:\n%s", runErr, stderr.String())
	}
	return steps
}

// Decode unmarshals the step's details into v.
func (s Step) Decode(v any) error {
	if err := json.Unmarshal(s.Details, v); err != nil {
		return fmt.Errorf("tsclient: step %s details: %w", s.Name, err)
	}
	return nil
}
