package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// goldenReports cover every part of the table: errors, a firehose with
// problems, the server, the machine's CPU, and both passes with and
// without --pid.
func goldenReports() []*Report {
	errs := map[string]int64{"RateLimitExceeded": 3, "transport": 1}
	load := &Report{Target: "http://127.0.0.1:2583", Mix: "mixed", Accounts: 3, Concurrency: 4, DurationSec: 2.0004,
		Ops: []OpReport{
			{Op: "createRecord", Count: 1200, OpsPerSec: 599.87, P50Ms: 3.25, P90Ms: 7.5, P99Ms: 12.125, MaxMs: 40.001, Errors: errs},
			{Op: "getRecord", Count: 4000, OpsPerSec: 1999.5, P50Ms: 0.5, P90Ms: 1, P99Ms: 2.5, MaxMs: 9, Sampled: true},
		},
		Total:  OpReport{Op: "total", Count: 5200, OpsPerSec: 2599.4, P50Ms: 0.75, P90Ms: 5, P99Ms: 11, MaxMs: 40.001, Errors: errs},
		Errors: errs,
		Firehose: &FirehoseReport{Subscribers: 3, AckedCommits: 1200, EventsMin: 1201, EventsMax: 1203, BenchCommitsMin: 1199, BenchCommitsMax: 1200,
			LastSeq: 9001, LagMaxMs: 12.5, FinalCatchUpMs: 3.25, OutOfOrder: 0, Dropped: 1, Problems: []string{"subscriber 2 ended: EOF", "subscriber 2 saw 1199 of 1200 acked commits"}},
		Server:        &ServerReport{PID: 4242, RSSStartMB: 50.5, RSSEndMB: 60.25, RSSPeakMB: 70, CPUCores: 0.8123},
		BenchCPUCores: 1.05, BoxCPUCores: 1.95, BoxCores: 2}
	getrepo := &Report{Target: "https://pds.example", Mix: "getrepo", Accounts: 2, Concurrency: 8, DurationSec: 3.5,
		Ops:    []OpReport{{Op: "listRecords", Count: 4, OpsPerSec: 1.1, P50Ms: 1, P90Ms: 2, P99Ms: 3, MaxMs: 4}, {Op: "describeRepo", Count: 2}, {Op: "getRepo", Count: 2, MaxMs: 700}},
		Total:  OpReport{Op: "total", Count: 8},
		Errors: map[string]int64{},
		Pass: &PassReport{Accounts: 2, Calls: 8, Errors: 0, Records: 260, GetRepoBytes: 3 << 20, DurationSec: 3.5, RSSBeforeMB: 40, RSSPeakMB: 45.5, RSSAfterMB: 41,
			Repos:        []RepoStream{{DID: "did:plc:a", Records: 130, Bytes: 1500, Seconds: 0.25, BaselineMB: 40, PeakMB: 45.5, GrowthPeakMB: 5.5}, {DID: "did:plc:b", Records: 130, Bytes: 2 << 30}},
			GrowthPeakMB: 5.5},
		BoxCores: 2}
	readall := &Report{Target: "http://h:1", Mix: "readall", Accounts: 1, Concurrency: 1, DurationSec: 0.5,
		Ops:   []OpReport{{Op: "getRepo", Count: 1}},
		Total: OpReport{Op: "total", Count: 1}, Errors: map[string]int64{},
		Pass: &PassReport{Accounts: 1, Calls: 1, Records: 5, GetRepoBytes: 2048, DurationSec: 0.5}, BenchCPUCores: 0.1, BoxCores: 2}
	return []*Report{load, getrepo, readall}
}

// The table and the JSON document are what 'pdslog bench' printed before
// it had a package of its own (testdata/report.golden, written by the
// old code): field names, order and number formats are its interface.
func TestReportOutput(t *testing.T) {
	var got bytes.Buffer
	for _, r := range goldenReports() {
		got.WriteString("=== text\n")
		r.print(&got)
		got.WriteString("=== json\n")
		enc := json.NewEncoder(&got)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/report.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("report output differs from testdata/report.golden:\n%s", got.String())
	}
}
