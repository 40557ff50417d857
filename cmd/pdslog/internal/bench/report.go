package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"
)

// Report is the result of a run: what Run prints, as a table or (its JSON
// encoding) with Config.JSON.
type Report struct {
	Target      string           `json:"target"`
	Mix         string           `json:"mix"`
	Accounts    int              `json:"accounts"`
	Concurrency int              `json:"concurrency"`
	DurationSec float64          `json:"duration_sec"`
	Ops         []OpReport       `json:"ops"`
	Total       OpReport         `json:"total"`
	Errors      map[string]int64 `json:"errors"`
	Firehose    *FirehoseReport  `json:"firehose,omitempty"`
	Server      *ServerReport    `json:"server,omitempty"`
	// Pass is the result of --mix readall or getrepo.
	Pass *PassReport `json:"pass,omitempty"`
	// BenchCPUCores is this process's own CPU time (clients and
	// subscribers) over the load's wall time: on a shared box the load
	// generator's share is not the server's.
	BenchCPUCores float64 `json:"bench_cpu_cores"`
	// BoxCPUCores is the whole machine's busy CPU time over the load's
	// wall time (Linux /proc/stat), of BoxCores: what neither the server nor
	// the bench used was taken by other processes.
	BoxCPUCores float64 `json:"box_cpu_cores,omitempty"`
	BoxCores    int     `json:"box_cores"`
}

// OpReport is one operation's line of the report.
type OpReport struct {
	Op        string           `json:"op"`
	Count     int64            `json:"count"`
	OpsPerSec float64          `json:"ops_per_sec"`
	P50Ms     float64          `json:"p50_ms"`
	P90Ms     float64          `json:"p90_ms"`
	P99Ms     float64          `json:"p99_ms"`
	MaxMs     float64          `json:"max_ms"`
	Sampled   bool             `json:"sampled,omitempty"` // percentiles from a reservoir, not every call
	Errors    map[string]int64 `json:"errors,omitempty"`
}

// FirehoseReport is what the firehose subscribers saw.
type FirehoseReport struct {
	Subscribers int `json:"subscribers"`
	// AckedCommits is the number of write calls that got a 200 during the
	// load; each subscriber must have seen a #commit for every one.
	AckedCommits int64 `json:"acked_commits"`
	// Events and CommitsOfBench are per-subscriber minimum and maximum.
	EventsMin                  int64    `json:"events_min"`
	EventsMax                  int64    `json:"events_max"`
	BenchCommitsMin            int64    `json:"bench_commits_min"`
	BenchCommitsMax            int64    `json:"bench_commits_max"`
	LastSeq                    int64    `json:"last_seq"`
	LagMaxMs                   float64  `json:"lag_max_ms"`        // greatest (receive − event time) of any frame
	FinalCatchUpMs             float64  `json:"final_catch_up_ms"` // from the end of the load until every subscriber had every acked commit
	OutOfOrder                 int64    `json:"out_of_order"`      // frames whose seq did not increase
	Dropped                    int      `json:"dropped"`           // subscribers whose stream ended early
	EverySubscriberGotEverySeq bool     `json:"every_subscriber_got_every_seq"`
	Problems                   []string `json:"problems,omitempty"`
}

// ServerReport is the target process's RSS and CPU over a load.
type ServerReport struct {
	PID        int     `json:"pid"`
	RSSStartMB float64 `json:"rss_start_mb"`
	RSSEndMB   float64 `json:"rss_end_mb"`
	RSSPeakMB  float64 `json:"rss_peak_mb"` // VmHWM: the process's peak since start
	// CPUCores is the server's user+system CPU time during the load over
	// its wall time: 2.0 is both cores of a 2-core box.
	CPUCores float64 `json:"cpu_cores"`
}

// opsReport fills the per-operation rows, the total and the errors.
func (b *runner) opsReport(rep *Report, elapsed time.Duration) {
	rep.Errors = map[string]int64{}
	total := newOpStats()
	for _, op := range reportOps {
		s, ok := b.stats[op]
		if !ok {
			continue
		}
		r := s.report(op, elapsed)
		rep.Ops = append(rep.Ops, r)
		for k, v := range r.Errors {
			rep.Errors[k] += v
		}
		total.add(s)
	}
	rep.Total = total.report("total", elapsed)
}

// print writes the report as a table.
func (r *Report) print(w io.Writer) {
	fmt.Fprintf(w, "target %s  mix %s  accounts %d  concurrency %d  duration %.1fs\n\n",
		r.Target, r.Mix, r.Accounts, r.Concurrency, r.DurationSec)
	r.printOps(w)
	if r.Firehose != nil {
		r.Firehose.print(w)
	}
	if r.Pass != nil {
		r.Pass.print(w, r.Mix, r.Pass.RSSAfterMB > 0)
	}
	fmt.Fprintln(w)
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server pid %d RSS: start %.1f MB, end %.1f MB, peak (VmHWM) %.1f MB; CPU %.2f cores\n",
			s.PID, s.RSSStartMB, s.RSSEndMB, s.RSSPeakMB, s.CPUCores)
	}
	fmt.Fprintf(w, "bench process CPU %.2f cores", r.BenchCPUCores)
	if r.BoxCPUCores > 0 {
		fmt.Fprintf(w, "; whole machine %.2f of %d cores busy", r.BoxCPUCores, r.BoxCores)
	}
	fmt.Fprintln(w)
}

// printOps writes the operations' table and their errors by name.
func (r *Report) printOps(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tops/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\t")
	for _, o := range append(slices.Clone(r.Ops), r.Total) {
		var errs int64
		for _, v := range o.Errors {
			errs += v
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", o.Op, o.Count, o.OpsPerSec, o.P50Ms, o.P90Ms, o.P99Ms, o.MaxMs, errs)
	}
	tw.Flush()
	if len(r.Errors) == 0 {
		return
	}
	fmt.Fprintln(w, "\nerrors:")
	for _, o := range r.Ops {
		for _, k := range slices.Sorted(maps.Keys(o.Errors)) {
			fmt.Fprintf(w, "  %-14s %-24s %d\n", o.Op, k, o.Errors[k])
		}
	}
}

func (f *FirehoseReport) print(w io.Writer) {
	yes := "no"
	if f.EverySubscriberGotEverySeq {
		yes = "yes"
	}
	fmt.Fprintf(w, "\nfirehose: %d subscribers, %d acked commits; events per subscriber %d..%d, bench commits %d..%d, last seq %d\n",
		f.Subscribers, f.AckedCommits, f.EventsMin, f.EventsMax, f.BenchCommitsMin, f.BenchCommitsMax, f.LastSeq)
	fmt.Fprintf(w, "  lag max %.1f ms, final catch-up %.1f ms; every subscriber got every seq: %s\n", f.LagMaxMs, f.FinalCatchUpMs, yes)
	for _, p := range f.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
}
