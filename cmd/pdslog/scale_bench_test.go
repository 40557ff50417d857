package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/cmd/pdslog/internal/bench"
)

// benchJSON runs `pdslog bench ... --json` and decodes its report.
func benchJSON(t testing.TB, ctx context.Context, args ...string) (*bench.Report, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	var stderr io.Writer = &errOut
	if _, ok := t.(*testing.B); ok {
		stderr = io.MultiWriter(&errOut, os.Stderr) // progress of a long scale run
	}
	if code := run(ctx, append(append([]string{"bench"}, args...), "--json"), &out, stderr); code != exitOK {
		t.Fatalf("bench %v: exit %d: %s", args, code, errOut.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out.String())
	}
	return &rep, errOut.String()
}

// repoCAR fetches getRepo independently of bench and counts the records in
// it with indigo's repo loader.
func repoCAR(t *testing.T, target, did string) (size int64, records int) {
	t.Helper()
	resp, err := http.Get(target + "/xrpc/com.atproto.sync.getRepo?did=" + did)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("getRepo %s: %d %v", did, resp.StatusCode, err)
	}
	_, repo, err := indigorepo.LoadRepoFromCAR(t.Context(), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("getRepo %s: %v", did, err)
	}
	if err := repo.MST.Walk(func([]byte, cid.Cid) error { records++; return nil }); err != nil {
		t.Fatal(err)
	}
	return int64(len(data)), records
}

func opCount(rep *bench.Report, op string) int64 {
	for _, o := range rep.Ops {
		if o.Op == op {
			return o.Count
		}
	}
	return -1
}

// --records fills accounts up to N (and no further on a rerun), --mix
// readall reads every account whole (the bytes it reports are exactly the
// repos' CARs, the records exactly what they hold), and --mix getrepo
// streams one repo and reports the RSS baseline/peak around it.
func TestBenchRecordsReadAllGetRepo(t *testing.T) {
	plcSrv := plcserver.Start(t)
	t.Setenv("PDS_ADMIN_PASSWORD", "bench-admin")
	addr, _, stop := startServe(t, "--data-dir", t.TempDir(), "--plc-url", plcSrv.URL)
	defer stop()
	target := "http://" + addr
	state := filepath.Join(t.TempDir(), "state.json")
	pid := strconv.Itoa(os.Getpid())

	rep, errOut := benchJSON(t, t.Context(), "--target", target, "--accounts", "2", "--concurrency", "3",
		"--records", "130", "--mix", "readall", "--state", state, "--pid", pid)
	if !strings.Contains(errOut, "every account holds at least 130") {
		t.Errorf("no fill summary on stderr: %q", errOut)
	}
	p := rep.Pass
	if p == nil {
		t.Fatalf("no pass in the report: %+v", rep)
	}
	var st benchStateFile
	data, _ := os.ReadFile(state)
	if err := json.Unmarshal(data, &st); err != nil || len(st.Accounts) != 2 {
		t.Fatalf("state file %v: %s", err, data)
	}
	var size int64
	for _, a := range st.Accounts {
		n, recs := repoCAR(t, target, a.DID)
		if recs != 130 {
			t.Errorf("%s holds %d records, want 130", a.DID, recs)
		}
		size += n
	}
	if p.Accounts != 2 || p.Records != 260 || p.GetRepoBytes != size || p.Errors != 0 || len(rep.Errors) != 0 {
		t.Errorf("readall: %+v (CARs are %d bytes), errors %v", p, size, rep.Errors)
	}
	// one getRepo and describeRepo per account, two pages of listRecords each
	if g, d, l := opCount(rep, "getRepo"), opCount(rep, "describeRepo"), opCount(rep, "listRecords"); g != 2 || d != 2 || l != 4 || p.Calls != 8 {
		t.Errorf("calls: getRepo %d describeRepo %d listRecords %d, total %d", g, d, l, p.Calls)
	}
	if !(p.RSSBeforeMB > 0 && p.RSSPeakMB > 0 && p.RSSAfterMB > 0) || p.DurationSec <= 0 {
		t.Errorf("readall RSS/time: %+v", p)
	}

	// A rerun reuses the accounts and creates nothing; the table names the pass.
	code, out, errOut2 := runCmd(t, t.Context(), "bench", "--target", target, "--accounts", "2", "--records", "130",
		"--mix", "readall", "--state", state)
	if code != exitOK || strings.Contains(errOut2, "created") || !strings.Contains(out, "readall: 2 accounts, 8 calls (0 failed), 260 records listed") {
		t.Errorf("rerun: exit %d\nstdout %s\nstderr %s", code, out, errOut2)
	}

	// getrepo on a fresh account: its stream, sized like the real CAR.
	state2 := filepath.Join(t.TempDir(), "state2.json")
	rep, _ = benchJSON(t, t.Context(), "--target", target, "--accounts", "1", "--concurrency", "4",
		"--records", "240", "--mix", "getrepo", "--state", state2, "--pid", pid)
	p = rep.Pass
	if p == nil || len(p.Repos) != 1 || p.Errors != 0 {
		t.Fatalf("getrepo: %+v", p)
	}
	r := p.Repos[0]
	n, recs := repoCAR(t, target, r.DID)
	if recs != 240 || r.Records != 240 || r.Bytes != n || p.GetRepoBytes != n {
		t.Errorf("getrepo stream %+v: the repo holds %d records in %d bytes", r, recs, n)
	}
	if !(r.BaselineMB > 0 && r.PeakMB > 0 && r.GrowthPeakMB >= 0 && r.GrowthPeakMB == p.GrowthPeakMB) {
		t.Errorf("getrepo RSS: %+v", r)
	}
}

func TestBenchRefusesBadRecords(t *testing.T) {
	code, _, errOut := runCmd(t, t.Context(), "bench", "--target", "http://127.0.0.1:1", "--records", "-1")
	if code != exitUsage || !strings.Contains(errOut, "--records") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// scaleChild starts `pdslog serve` as a child process (the test binary,
// through TestMain's serveChildEnv hook) and returns its address and pid.
func scaleChild(b *testing.B, args ...string) (addr string, pid int) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+strings.Join(append([]string{"--port", "0"}, args...), "\x1f"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		b.Fatalf("serve child: %q %v", line, err)
	}
	return addr, cmd.Process.Pid
}

func scaleEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// BenchmarkScale is the scale scenario of issue 9 end to end, by hand:
//
//	PDSLOG_SCALE_ACCOUNTS=10000 PDSLOG_SCALE_RECORDS=100 PDSLOG_SCALE_BIGREPO=100000 \
//	  go test ./cmd/pdslog -run '^$' -bench Scale -benchtime 1x -timeout 3h
//
// A PLC directory and `pdslog serve --rate-limits=false` as a child process;
// `pdslog bench` seeds ACCOUNTS accounts with RECORDS records each, reads
// them all once (readall), then fills one more account with BIGREPO records
// and streams its getRepo. PDSLOG_SCALE_PPROF=host:port turns on the
// server's pprof for a heap profile; PDSLOG_SCALE_CONCURRENCY sets bench's
// clients (default 8). Defaults are small (50 x 20, a 2,000-record repo).
//
// Metrics: rss_mb (server RSS after the read pass), rss_peak_mb (highest
// during it), getrepo_growth_mb (peak RSS growth while streaming the big
// repo), readall_s and getrepo_mb.
func BenchmarkScale(b *testing.B) {
	accounts := scaleEnv(b, "PDSLOG_SCALE_ACCOUNTS", 50)
	records := scaleEnv(b, "PDSLOG_SCALE_RECORDS", 20)
	big := scaleEnv(b, "PDSLOG_SCALE_BIGREPO", 2000)
	conc := scaleEnv(b, "PDSLOG_SCALE_CONCURRENCY", 8)
	plcSrv := plcserver.Start(b)
	b.Setenv("PDS_ADMIN_PASSWORD", "scale-admin")
	args := []string{"--data-dir", b.TempDir(), "--plc-url", plcSrv.URL, "--rate-limits=false"}
	if pp := os.Getenv("PDSLOG_SCALE_PPROF"); pp != "" {
		args = append(args, "--pprof-addr", pp)
	}
	addr, pid := scaleChild(b, args...)
	target := "http://" + addr
	dir := b.TempDir()
	common := []string{"--target", target, "--pid", strconv.Itoa(pid), "--concurrency", strconv.Itoa(conc)}
	ctx := context.Background()
	for b.Loop() {
		rep, _ := benchJSON(b, ctx, append(common, "--accounts", strconv.Itoa(accounts), "--records", strconv.Itoa(records),
			"--mix", "readall", "--state", filepath.Join(dir, "accounts.json"))...)
		p := rep.Pass
		if p.Errors != 0 || p.Records < int64(accounts*records) {
			b.Fatalf("readall: %+v", p)
		}
		b.ReportMetric(p.RSSAfterMB, "rss_mb")
		b.ReportMetric(p.RSSPeakMB, "rss_peak_mb")
		b.ReportMetric(p.DurationSec, "readall_s")
		fmt.Fprintf(os.Stderr, "scale: readall %d accounts, %d records, %s, %.1fs; server RSS before %.1f MB, peak %.1f MB, after %.1f MB\n",
			p.Accounts, p.Records, mb(p.GetRepoBytes), p.DurationSec, p.RSSBeforeMB, p.RSSPeakMB, p.RSSAfterMB)

		rep, _ = benchJSON(b, ctx, append(common, "--accounts", "1", "--records", strconv.Itoa(big),
			"--mix", "getrepo", "--state", filepath.Join(dir, "bigrepo.json"))...)
		p = rep.Pass
		if p.Errors != 0 || len(p.Repos) != 1 || p.Repos[0].Records < int64(big) {
			b.Fatalf("getrepo: %+v", p)
		}
		r := p.Repos[0]
		b.ReportMetric(r.GrowthPeakMB, "getrepo_growth_mb")
		b.ReportMetric(float64(r.Bytes)/(1<<20), "getrepo_mb")
		fmt.Fprintf(os.Stderr, "scale: getRepo %d records, %s in %.1fs; server RSS baseline %.1f MB, peak %.1f MB, growth %.1f MB\n",
			r.Records, mb(r.Bytes), r.Seconds, r.BaselineMB, r.PeakMB, r.GrowthPeakMB)
	}
}

// mb is a size in MiB, to three decimals: a small default run streams tens of kB.
func mb(n int64) string { return fmt.Sprintf("%.3f MB", float64(n)/(1<<20)) }
