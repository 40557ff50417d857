package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The firehose settings are checked with the others, by the env name the
// operator wrote.
func TestServeRefusesBadFirehoseSettings(t *testing.T) {
	tests := []struct{ env, value, want string }{
		{"PDSLOG_FIREHOSE_MAX_LAG", "0", "PDSLOG_FIREHOSE_MAX_LAG: must be positive"},
		{"PDSLOG_FIREHOSE_MAX_LAG", "-5", "PDSLOG_FIREHOSE_MAX_LAG: must be positive"},
		{"PDSLOG_FIREHOSE_MAX_LAG", "lots", "PDSLOG_FIREHOSE_MAX_LAG"},
		{"PDS_REPO_BACKFILL_LIMIT_MS", "-1", "PDS_REPO_BACKFILL_LIMIT_MS: must not be negative"},
		{"PDS_REPO_BACKFILL_LIMIT_MS", "a day", "PDS_REPO_BACKFILL_LIMIT_MS"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			t.Setenv("PDS_DATA_DIRECTORY", t.TempDir())
			t.Setenv(tt.env, tt.value)
			code, _, errOut := runCmd(t, t.Context(), "serve")
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, exitUsage, errOut, tt.want)
			}
		})
	}
}

// Shutting serve down closes firehose subscribers with "going away" (1001):
// the hijacked websockets do not hold up the drain, and serve returns well
// before its drain timeout.
func TestServeFirehoseGoingAway(t *testing.T) {
	t.Setenv("PDS_REPO_BACKFILL_LIMIT_MS", "86400000") // the reference's env form parses
	t.Setenv("PDSLOG_FIREHOSE_MAX_LAG", "100")
	addr, _, stop := startServe(t, "--data-dir", t.TempDir(), "--drain-timeout", "20s")
	ends := make(chan error, 2)
	for _, q := range []string{"", "?cursor=0"} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/xrpc/com.atproto.sync.subscribeRepos"+q, nil)
		cancel()
		if err != nil {
			stop()
			t.Fatal(err)
		}
		go func() {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					ends <- err
					return
				}
			}
		}()
	}
	start := time.Now()
	stop()
	if took := time.Since(start); took >= 20*time.Second {
		t.Fatalf("serve took %v to stop: the firehose held up the drain", took)
	}
	for range 2 {
		if err := <-ends; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("subscriber ended with %v, want going away", err)
		}
	}
}
