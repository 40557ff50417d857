package bench

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Passes: --mix readall reads every account once (getRepo, describeRepo
// and all listRecords pages); --mix getrepo streams getRepo of each
// account in turn and measures the server's RSS growth while it does.

// PassReport is the result of a readall or getrepo pass.
type PassReport struct {
	Accounts int   `json:"accounts"`
	Calls    int64 `json:"calls"`
	Errors   int64 `json:"errors"`
	// Records is the number of records listRecords returned, over all
	// accounts and pages.
	Records      int64   `json:"records"`
	GetRepoBytes int64   `json:"get_repo_bytes"`
	DurationSec  float64 `json:"duration_sec"`
	// Server RSS (with --pid): before the pass, the highest seen while it
	// ran (sampled every 10 ms, and the kernel's VmHWM when it could be
	// reset before the pass), and after.
	RSSBeforeMB float64 `json:"rss_before_mb,omitempty"`
	RSSPeakMB   float64 `json:"rss_peak_mb,omitempty"`
	RSSAfterMB  float64 `json:"rss_after_mb,omitempty"`
	// Repos is, for getrepo, each stream: the repo, its size, and the
	// server's RSS growth over the baseline taken right before it.
	Repos []RepoStream `json:"repos,omitempty"`
	// GrowthPeakMB is the largest RSS growth of any getrepo stream.
	GrowthPeakMB float64 `json:"growth_peak_mb,omitempty"`
}

// RepoStream is one getRepo stream of a getrepo pass.
type RepoStream struct {
	DID          string  `json:"did"`
	Records      int64   `json:"records"`
	Bytes        int64   `json:"bytes"`
	Seconds      float64 `json:"seconds"`
	BaselineMB   float64 `json:"baseline_mb,omitempty"`
	PeakMB       float64 `json:"peak_mb,omitempty"`
	GrowthPeakMB float64 `json:"growth_peak_mb,omitempty"`
}

// passCounts are a pass's running totals.
type passCounts struct {
	records, bytes atomic.Int64
}

// runPass runs the readall or getrepo pass.
func (b *runner) runPass(ctx context.Context) (*PassReport, time.Duration, error) {
	p := &PassReport{Accounts: len(b.accts)}
	var n passCounts
	start := time.Now()
	p.RSSBeforeMB = rssNow(b.cfg.PID)
	switch b.cfg.Mix {
	case mixReadAll:
		p.RSSPeakMB = b.readAll(ctx, &n)
	case mixGetRepo:
		b.getRepos(ctx, p, &n)
	}
	p.RSSAfterMB = rssNow(b.cfg.PID)
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return nil, 0, ctx.Err()
	}
	p.DurationSec = elapsed.Seconds()
	p.Records, p.GetRepoBytes = n.records.Load(), n.bytes.Load()
	for _, s := range b.stats {
		ok, failed := s.counts()
		p.Calls += ok
		p.Errors += failed
	}
	return p, elapsed, nil
}

// readAll reads every account once, Concurrency at a time, and returns the
// server's peak RSS meanwhile. A failed call is counted and the pass goes
// on: the report says how many failed.
func (b *runner) readAll(ctx context.Context, n *passCounts) (peakRSS float64) {
	rs := startRSS(b.cfg.PID)
	var done atomic.Int64
	stop := b.reportProgress(func(time.Duration) string {
		return fmt.Sprintf("bench: readall: %d of %d accounts, %s read", done.Load(), len(b.accts), humanBytes(n.bytes.Load()))
	})
	_ = b.each(ctx, len(b.accts), func(ctx context.Context, i int) error {
		a := b.accts[i]
		if size, err := b.getRepo(ctx, a.DID); err == nil {
			n.bytes.Add(size)
		}
		if colls, err := b.collections(ctx, a); err == nil {
			for _, coll := range colls {
				_ = b.listAll(ctx, a, coll, func(page int) bool { n.records.Add(int64(page)); return true })
			}
		}
		done.Add(1)
		return nil
	})
	stop()
	return rs.stop()
}

// getRepos streams each account's repo in turn, one at a time, with the
// server's RSS baseline taken right before each stream.
func (b *runner) getRepos(ctx context.Context, p *PassReport, n *passCounts) {
	for _, a := range b.accts {
		if ctx.Err() != nil {
			break
		}
		records, err := b.countRecords(ctx, a, 0)
		if err != nil {
			continue
		}
		n.records.Add(int64(records))
		st, err := b.measureStream(ctx, a.DID)
		if err != nil {
			continue
		}
		st.Records = int64(records)
		n.bytes.Add(st.Bytes)
		if b.cfg.PID > 0 {
			st.GrowthPeakMB = max(0, st.PeakMB-st.BaselineMB)
			p.RSSPeakMB = max(p.RSSPeakMB, st.PeakMB)
			p.GrowthPeakMB = max(p.GrowthPeakMB, st.GrowthPeakMB)
		}
		p.Repos = append(p.Repos, st)
	}
}

// measureStream streams one repo with the server's RSS sampled around it.
func (b *runner) measureStream(ctx context.Context, did string) (RepoStream, error) {
	st := RepoStream{DID: did}
	settle()
	st.BaselineMB = rssNow(b.cfg.PID)
	rs := startRSS(b.cfg.PID)
	t0 := time.Now()
	size, err := b.getRepo(ctx, did)
	st.Seconds = time.Since(t0).Seconds()
	st.PeakMB = rs.stop()
	st.Bytes = size
	return st, err
}

// settle gives the server a moment after the counting calls so the
// baseline is not taken mid-request.
func settle() { time.Sleep(100 * time.Millisecond) }

// print writes a pass's figures under the table; pid says whether they
// include the server's RSS.
func (p *PassReport) print(w io.Writer, mix string, pid bool) {
	fmt.Fprintf(w, "\n%s: %d accounts, %d calls (%d failed), %d records listed, getRepo %s, %.1fs\n",
		mix, p.Accounts, p.Calls, p.Errors, p.Records, humanBytes(p.GetRepoBytes), p.DurationSec)
	if pid {
		fmt.Fprintf(w, "  server RSS: before %.1f MB, peak %.1f MB, after %.1f MB\n", p.RSSBeforeMB, p.RSSPeakMB, p.RSSAfterMB)
	}
	for _, r := range p.Repos {
		fmt.Fprintf(w, "  getRepo %s: %d records, %s in %.1fs", r.DID, r.Records, humanBytes(r.Bytes), r.Seconds)
		if pid {
			fmt.Fprintf(w, "; RSS baseline %.1f MB, peak %.1f MB, growth %.1f MB", r.BaselineMB, r.PeakMB, r.GrowthPeakMB)
		}
		fmt.Fprintln(w)
	}
}
