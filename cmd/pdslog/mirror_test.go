package main

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/projections/mirror/d1/d1test"
)

// TestMirrorCommand runs `pdslog mirror` as a cron job would, against a
// local D1 (Miniflare) and R2 (gofakes3): --once mirrors to the head and
// exits 0, `mirror status` shows the cursor and no lag, a rerun does
// nothing; a refused token exits 1 with a clear message that holds no
// token; an unreachable API, or serve holding the data dir, exits 75.
func TestMirrorCommand(t *testing.T) {
	e := d1test.StartT(t, d1test.Options{})
	backend := s3mem.New()
	if err := backend.CreateBucket("pds"); err != nil {
		t.Fatal(err)
	}
	r2 := httptest.NewServer(gofakes3.New(backend).Server())
	defer r2.Close()
	dir := fillDataDir(t, 300)
	db := e.Database(t)
	t.Setenv("CLOUDFLARE_ACCOUNT_ID", e.Account)
	t.Setenv("CLOUDFLARE_API_TOKEN", e.Token)
	t.Setenv("CLOUDFLARE_API_BASE_URL", e.APIBase)
	t.Setenv("PDS_D1_DATABASE_ID", db)
	t.Setenv("PDS_R2_BUCKET", "pds")
	t.Setenv("PDS_R2_ENDPOINT", r2.URL)
	t.Setenv("PDS_R2_ACCESS_KEY_ID", "key")
	t.Setenv("PDS_R2_SECRET_ACCESS_KEY", "r2-secret-value")
	t.Setenv("PDSLOG_LOG_FORMAT", "json")

	code, out, errOut := runCmd(t, t.Context(), "mirror", "--to", "cloudflare", "--once", "--data-dir", dir)
	if code != exitOK || !strings.Contains(out, "mirror: caught up with seq 300: 300 events") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, t.Context(), "mirror", "status", "--data-dir", dir, "--max-lag", "1")
	if code != exitOK || !strings.Contains(out, "cursor 300") || !strings.Contains(out, "head 300 (the log's head), lag 0 events") {
		t.Fatalf("status: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	code, out, _ = runCmd(t, t.Context(), "mirror", "--to", "cloudflare", "--once", "--data-dir", dir)
	if code != exitOK || !strings.Contains(out, ": 0 events in") || !strings.Contains(out, "3 D1 requests, 0 R2 uploads") {
		t.Fatalf("rerun: exit %d\nstdout %s", code, out)
	}
	// --help never prints the secrets taken from the environment.
	code, _, errOut = runCmd(t, t.Context(), "mirror", "--help")
	if code != exitOK || strings.Contains(errOut, e.Token) || strings.Contains(errOut, "r2-secret-value") {
		t.Fatalf("--help: exit %d, or it prints a secret:\n%s", code, errOut)
	}

	t.Run("bad token", func(t *testing.T) {
		t.Setenv("CLOUDFLARE_API_TOKEN", "wrong-token-value")
		code, out, errOut := runCmd(t, t.Context(), "mirror", "--to", "cloudflare", "--once", "--data-dir", dir)
		if code != exitFailure || !strings.Contains(errOut, "authentication failed") || !strings.Contains(errOut, "CLOUDFLARE_API_TOKEN") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		if strings.Contains(out+errOut, "wrong-token-value") {
			t.Fatalf("the token is in the output:\n%s\n%s", out, errOut)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		t.Setenv("CLOUDFLARE_API_BASE_URL", "http://"+addr+"/client/v4")
		t.Setenv("PDSLOG_CF_MAX_ATTEMPTS", "2")
		code, out, errOut := runCmd(t, t.Context(), "mirror", "status", "--data-dir", dir)
		if code != exitTempFail || !strings.Contains(errOut, "connection refused") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
	})
	t.Run("inside serve", func(t *testing.T) {
		dir := fillDataDir(t, 120)
		t.Setenv("PDS_D1_DATABASE_ID", e.Database(t))
		ctx, cancel := context.WithCancel(t.Context())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- (&serveCommand{stdout: io.Discard, stderr: io.Discard, ready: ready}).run(ctx,
				[]string{"--data-dir", dir, "--port", "0", "--mirror-cloudflare"})
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("serve exited: %v", err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, out, _ := runCmd(t, t.Context(), "mirror", "status", "--data-dir", dir)
			if strings.Contains(out, "cursor 120,") && strings.Contains(out, "head 120 (the log's head when the mirror last wrote), lag 0 events") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the mirror inside serve did not catch up: %s", out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
	})
	t.Run("serve holds the data dir", func(t *testing.T) {
		d, err := pds.Open(dir, &pds.Options{Command: "serve"})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		code, _, errOut := runCmd(t, t.Context(), "mirror", "--to", "cloudflare", "--once", "--data-dir", dir)
		if code != exitTempFail || !strings.Contains(errOut, "serve --mirror-cloudflare") {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		code, out, errOut := runCmd(t, t.Context(), "mirror", "status", "--data-dir", dir)
		if code != exitOK || !strings.Contains(out, "lag 0 events") || !strings.Contains(out, "when the mirror last wrote") {
			t.Fatalf("status while serve runs: exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
	})
}
