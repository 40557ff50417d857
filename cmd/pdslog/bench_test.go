package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/cmd/pdslog/internal/bench"
)

// benchStateFile is what the tests read of bench's --state file.
type benchStateFile struct {
	Target   string `json:"target"`
	Accounts []struct {
		DID string `json:"did"`
	} `json:"accounts"`
}

// `pdslog bench` against a real `pdslog serve` (invites required, so the
// accounts are created with an admin-minted invite through a real PLC
// directory): a mixed load with three firehose subscribers, then a second
// run that reuses the accounts from the state file.
func TestBenchAgainstServe(t *testing.T) {
	plcSrv := plcserver.Start(t)
	t.Setenv("PDS_ADMIN_PASSWORD", "bench-admin")
	// Rate limits off, as for every load run: two 2 s runs on the same three
	// accounts can pass the 5,000-points-an-hour write budget on a fast box.
	addr, _, stop := startServe(t, "--data-dir", t.TempDir(), "--plc-url", plcSrv.URL, "--rate-limits=false")
	defer stop()
	state := filepath.Join(t.TempDir(), "state.json")
	target := "http://" + addr

	code, out, errOut := runCmd(t, t.Context(), "bench", "--target", target, "--accounts", "3", "--concurrency", "4",
		"--duration", "2s", "--mix", "mixed", "--subscribers", "3", "--json", "--state", state, "--pid", strconv.Itoa(os.Getpid()))
	if code != exitOK {
		t.Fatalf("bench exit %d: %s", code, errOut)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
	var ops []string
	for _, o := range rep.Ops {
		ops = append(ops, o.Op)
		if o.Count == 0 || o.OpsPerSec <= 0 {
			t.Errorf("%s: count %d, %v ops/s", o.Op, o.Count, o.OpsPerSec)
		}
		if !(0 < o.P50Ms && o.P50Ms <= o.P90Ms && o.P90Ms <= o.P99Ms && o.P99Ms <= o.MaxMs) {
			t.Errorf("%s: percentiles not ordered: p50 %v p90 %v p99 %v max %v", o.Op, o.P50Ms, o.P90Ms, o.P99Ms, o.MaxMs)
		}
		if len(o.Errors) > 0 {
			t.Errorf("%s: errors %v", o.Op, o.Errors)
		}
	}
	if want := []string{"createRecord", "applyWrites", "getRecord", "listRecords", "uploadBlob"}; !slices.Equal(ops, want) {
		t.Errorf("ops %v, want %v", ops, want)
	}
	if len(rep.Errors) > 0 {
		t.Errorf("errors: %v", rep.Errors)
	}
	var sum int64
	for _, o := range rep.Ops {
		sum += o.Count
	}
	if rep.Total.Count != sum {
		t.Errorf("total count %d, ops sum to %d", rep.Total.Count, sum)
	}
	f := rep.Firehose
	if f == nil || f.Subscribers != 3 {
		t.Fatalf("firehose report %+v", f)
	}
	if !f.EverySubscriberGotEverySeq || f.Dropped != 0 || f.OutOfOrder != 0 || len(f.Problems) > 0 {
		t.Errorf("firehose: %+v", f)
	}
	// Every acknowledged write's commit reached every subscriber, and
	// nothing else of the bench's accounts did (no write failed).
	if f.AckedCommits == 0 || f.BenchCommitsMin != f.AckedCommits || f.BenchCommitsMax != f.AckedCommits ||
		f.EventsMin != f.EventsMax || f.EventsMin < f.AckedCommits {
		t.Errorf("firehose counts: %+v", f)
	}
	if w := rep.Ops[0].Count + rep.Ops[1].Count; f.AckedCommits != w {
		t.Errorf("acked commits %d, createRecord+applyWrites %d", f.AckedCommits, w)
	}
	if rep.Server == nil || rep.Server.RSSEndMB <= 0 || rep.Server.RSSPeakMB < rep.Server.RSSEndMB || rep.Server.CPUCores <= 0 || rep.BenchCPUCores <= 0 {
		t.Errorf("server RSS: %+v", rep.Server)
	}

	var st benchStateFile
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Target != target || len(st.Accounts) != 3 {
		t.Fatalf("state file %v: %s", err, data)
	}

	// The second run reuses the accounts (after refreshing their sessions)
	// and reads the records the first run wrote.
	code, out, errOut = runCmd(t, t.Context(), "bench", "--target", target, "--accounts", "3", "--concurrency", "2",
		"--duration", "300ms", "--mix", "read", "--state", state)
	if code != exitOK {
		t.Fatalf("second bench exit %d: %s", code, errOut)
	}
	for _, want := range []string{"getRecord", "listRecords", "p99 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "errors:") {
		t.Errorf("second run had errors:\n%s", out)
	}
	var st2 benchStateFile
	data, _ = os.ReadFile(state)
	if err := json.Unmarshal(data, &st2); err != nil || len(st2.Accounts) != 3 {
		t.Fatalf("state file after reuse %v: %s", err, data)
	}
	for i := range st.Accounts {
		if st2.Accounts[i].DID != st.Accounts[i].DID {
			t.Errorf("account %d: %s, was %s (not reused)", i, st2.Accounts[i].DID, st.Accounts[i].DID)
		}
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "--target is required"},
		{[]string{"--target", "ftp://127.0.0.1"}, "want http(s)"},
		{[]string{"--target", "http://127.0.0.1:1", "--mix", "chaos"}, "--mix"},
		{[]string{"--target", "http://127.0.0.1:1", "--duration", "2h"}, "--duration"},
		{[]string{"--target", "http://127.0.0.1:1", "--concurrency", "0"}, "--concurrency"},
	} {
		code, _, errOut := runCmd(t, t.Context(), append([]string{"bench"}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("bench %v: exit %d, stderr %q (want %q)", tt.args, code, errOut, tt.want)
		}
	}
}

// A target that requires invite codes, without an admin password to mint
// one, is a usage error that names the flag and the environment variable.
func TestBenchNeedsAdminPasswordForInvites(t *testing.T) {
	t.Setenv("PDS_ADMIN_PASSWORD", "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/xrpc/com.atproto.server.describeServer" {
			http.Error(w, `{"error":"MethodNotImplemented"}`, http.StatusNotImplemented)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"inviteCodeRequired":true,"availableUserDomains":[".test"]}`))
	}))
	defer srv.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	code, _, errOut := runCmd(t, t.Context(), "bench", "--target", srv.URL, "--state", state)
	want := "pdslog bench: the target requires invite codes: give its admin password (--admin-password or PDS_ADMIN_PASSWORD)\nTry: pdslog bench --help\n"
	if code != exitUsage || errOut != want {
		t.Errorf("exit %d, stderr %q, want %d %q", code, errOut, exitUsage, want)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file written before any account was: %v", err)
	}
}
