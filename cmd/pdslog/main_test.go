package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/projectiontest"
	"github.com/pdslog/pdslog/projections/repos"
)

// runCmd runs the CLI in-process and returns its exit code and output.
func runCmd(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// fillDataDir writes n random events into a fresh data dir's log.
func fillDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	d, err := pds.Open(dir, &pds.Options{Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	projectiontest.Fill(t, d.Log, committest.NewStream(42, 8), 42, n, nil)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// reposDigest opens the data dir's projection store and dumps the repos
// projection.
func reposDigest(t *testing.T, dir string) ([]byte, eventlog.Seq) {
	t.Helper()
	s, err := projections.OpenStore(filepath.Join(dir, pds.ProjectionsDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := repos.New(s)
	c, err := p.Cursor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return projectiontest.Digest(t, s, p), c
}

func TestReplayRebuildsProjections(t *testing.T) {
	dir := fillDataDir(t, 500)
	// Serve-style catch up gives the reference state.
	d, err := pds.Open(dir, &pds.Options{Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CatchUp(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	head := d.Log.Head()
	d.Close()
	want, cur := reposDigest(t, dir)
	if cur != head || len(want) == 0 {
		t.Fatalf("reference: cursor %d head %d, %d bytes", cur, head, len(want))
	}
	// Lose the projections entirely: replay rebuilds them from the log.
	if err := os.RemoveAll(filepath.Join(dir, pds.ProjectionsDir)); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, t.Context(), "replay", "--data-dir", dir, "--verify", "--log-format", "text")
	if code != exitOK {
		t.Fatalf("replay exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "verify: ") || !strings.Contains(out, "replay: rebuilt repos, blocks, records, accounts, blobs, oauth through seq") {
		t.Fatalf("replay output: %q", out)
	}
	got, cur := reposDigest(t, dir)
	if cur != head || !bytes.Equal(got, want) {
		t.Fatalf("rebuilt projection differs (cursor %d, head %d)", cur, head)
	}
	// Named projection, smaller batches: same state.
	if code, out, errOut := runCmd(t, t.Context(), "replay", "--data-dir", dir, "--projection", "repos", "--batch", "7"); code != exitOK {
		t.Fatalf("replay --projection repos: exit %d\n%s\n%s", code, out, errOut)
	}
	if got, _ := reposDigest(t, dir); !bytes.Equal(got, want) {
		t.Fatal("replay at batch 7 differs")
	}
}

// cancelOnWrite cancels a context the first time text containing trigger is
// written to it.
type cancelOnWrite struct {
	mu      sync.Mutex
	trigger string
	cancel  context.CancelFunc
	buf     bytes.Buffer
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.trigger) {
		w.cancel()
	}
	return len(p), nil
}

func TestReplayInterruptAndRerun(t *testing.T) {
	dir := fillDataDir(t, 1000)
	ctx, cancel := context.WithCancel(t.Context())
	stderr := &cancelOnWrite{trigger: "projection reset", cancel: cancel}
	code := run(ctx, []string{"replay", "--data-dir", dir, "--batch", "1", "--log-format", "text", "--log-level", "debug"}, io.Discard, stderr)
	if code != exitInterrupted {
		t.Fatalf("interrupted replay: exit %d, want %d\n%s", code, exitInterrupted, stderr.buf.String())
	}
	_, cur := reposDigest(t, dir)
	if cur >= 1000 {
		t.Fatalf("replay was not interrupted (cursor %d)", cur)
	}
	if code, out, errOut := runCmd(t, t.Context(), "replay", "--data-dir", dir); code != exitOK {
		t.Fatalf("rerun: exit %d\n%s\n%s", code, out, errOut)
	}
	got, cur := reposDigest(t, dir)
	if err := os.RemoveAll(filepath.Join(dir, pds.ProjectionsDir)); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCmd(t, t.Context(), "replay", "--data-dir", dir); code != exitOK {
		t.Fatal("clean replay failed")
	}
	want, wantCur := reposDigest(t, dir)
	if cur != wantCur || !bytes.Equal(got, want) {
		t.Fatal("replay after an interrupted one differs from a clean replay")
	}
}

func TestReplayVerifyReportsDivergence(t *testing.T) {
	dir := fillDataDir(t, 100)
	// Knock seq 37 out of the log behind its back (its key is 'e' + big-endian seq).
	db, err := pebble.Open(filepath.Join(dir, pds.LogDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := binary.BigEndian.AppendUint64([]byte{'e'}, 37)
	if err := db.Delete(key, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, errOut := runCmd(t, t.Context(), "replay", "--data-dir", dir, "--verify")
	if code != exitFailure || !strings.Contains(errOut, "diverges at seq 37") {
		t.Fatalf("exit %d, stderr %q; want failure naming seq 37", code, errOut)
	}
}

func TestReplayRefusesWhileServeHoldsDataDir(t *testing.T) {
	dir := fillDataDir(t, 10)
	d, err := pds.Open(dir, &pds.Options{Command: "serve"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	code, _, errOut := runCmd(t, t.Context(), "replay", "--data-dir", dir)
	if code != exitFailure || !strings.Contains(errOut, "in use by pdslog serve") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no args", nil, exitUsage, "Usage:"},
		{"help", []string{"--help"}, exitOK, "Commands:"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"replay help", []string{"replay", "--help"}, exitOK, "PDS_DATA_DIRECTORY"},
		{"serve help", []string{"serve", "-h"}, exitOK, "PDS_PORT"},
		{"bad flag", []string{"replay", "--nope"}, exitUsage, "flag provided but not defined"},
		{"bad projection", []string{"replay", "--data-dir", "DIR", "--projection", "nope"}, exitUsage, `unknown projection "nope"`},
		{"bad batch", []string{"replay", "--batch", "0"}, exitUsage, "--batch must be positive"},
		{"stray argument", []string{"replay", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"version", []string{"version"}, exitOK, "pdslog "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{}, tt.args...)
			for i, a := range args {
				if a == "DIR" {
					args[i] = t.TempDir()
				}
			}
			code, out, errOut := runCmd(t, t.Context(), args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d (want %d), output %q (want %q)", code, tt.code, out+errOut, tt.want)
			}
		})
	}
}

func TestEnvFallback(t *testing.T) {
	dir := fillDataDir(t, 20)
	t.Setenv("PDS_DATA_DIRECTORY", dir)
	t.Setenv("PDSLOG_REPLAY_PROJECTION", "repos")
	code, out, errOut := runCmd(t, t.Context(), "replay")
	if code != exitOK || !strings.Contains(out, "rebuilt repos through seq") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	t.Setenv("PDS_PORT", "not-a-port")
	if code, _, errOut := runCmd(t, t.Context(), "serve"); code != exitUsage || !strings.Contains(errOut, "PDS_PORT") {
		t.Fatalf("bad env: exit %d, %q", code, errOut)
	}
}

func TestServeHealthAndShutdown(t *testing.T) {
	dir := fillDataDir(t, 50)
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	cmd := &serveCommand{stdout: io.Discard, stderr: io.Discard, ready: ready}
	done := make(chan error, 1)
	go func() { done <- cmd.run(ctx, []string{"--data-dir", dir, "--port", "0"}) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/xrpc/_health"); code != 200 || !strings.Contains(body, `"version"`) {
		t.Fatalf("health: %d %s", code, body)
	}
	if code, body := get("/ready"); code != 200 {
		t.Fatalf("ready: %d %s", code, body)
	}
	if code, body := get("/xrpc/com.example.nothing"); code != 501 || !strings.Contains(body, `"error":"MethodNotImplemented"`) {
		t.Fatalf("unknown method: %d %s", code, body)
	}
	// serve caught the projections up before listening.
	if code, _, errOut := runCmd(t, t.Context(), "replay", "--data-dir", dir); code != exitFailure || !strings.Contains(errOut, "in use by pdslog serve") {
		t.Fatalf("replay while serving: %d %q", code, errOut)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	_, cur := reposDigest(t, dir)
	if cur != 50 {
		t.Fatalf("serve left repos projection at %d, want 50", cur)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
