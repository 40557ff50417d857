package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scale passes: --records fills every account up to N records before the
// measured phase; --mix readall reads every account once (getRepo and all
// listRecords pages); --mix getrepo streams getRepo of each account and
// measures the server's RSS growth while it does.

const (
	mixReadAll = "readall"
	mixGetRepo = "getrepo"

	opGetRepo      = "getRepo"
	opDescribeRepo = "describeRepo"

	benchMaxRecords   = 1_000_000
	benchFillChunk    = 50                    // records one worker creates for one account before taking the next job
	benchRSSInterval  = 10 * time.Millisecond // RSS sampling period during a pass
	benchStreamTimout = 30 * time.Minute      // longest single getRepo stream
	benchFillReport   = 5 * time.Second       // progress line period off a terminal
	benchListPage     = 100                   // listRecords page size in passes
)

// benchPass is the result of a readall or getrepo pass.
type benchPass struct {
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
	Repos []benchRepoStream `json:"repos,omitempty"`
	// GrowthPeakMB is the largest RSS growth of any getrepo stream.
	GrowthPeakMB float64 `json:"growth_peak_mb,omitempty"`
}

type benchRepoStream struct {
	DID          string  `json:"did"`
	Records      int64   `json:"records"`
	Bytes        int64   `json:"bytes"`
	Seconds      float64 `json:"seconds"`
	BaselineMB   float64 `json:"baseline_mb,omitempty"`
	PeakMB       float64 `json:"peak_mb,omitempty"`
	GrowthPeakMB float64 `json:"growth_peak_mb,omitempty"`
}

func isPassMix(mix string) bool { return mix == mixReadAll || mix == mixGetRepo }

// fillRecords makes every account hold at least c.records records,
// counting what each has and creating the rest at --concurrency.
func (b *bench) fillRecords(ctx context.Context) error {
	want := b.c.records
	have := make([]int, len(b.accts))
	if err := b.each(ctx, len(b.accts), func(ctx context.Context, i int) error {
		n, err := b.countRecords(ctx, b.accts[i], want)
		have[i] = n
		return err
	}); err != nil {
		return err
	}
	type job struct {
		a *benchAccount
		n int
	}
	var jobs []job
	total := 0
	for i, a := range b.accts {
		for need := want - have[i]; need > 0; need -= benchFillChunk {
			jobs = append(jobs, job{a, min(need, benchFillChunk)})
			total += min(need, benchFillChunk)
		}
	}
	if total == 0 {
		return nil
	}
	var done atomic.Int64
	stop := b.reportProgress(func(el time.Duration) string {
		n := done.Load()
		return fmt.Sprintf("bench: records: %d of %d created (%s/s)", n, total, human(float64(n)/el.Seconds()))
	})
	err := b.each(ctx, len(jobs), func(ctx context.Context, i int) error {
		r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
		for range jobs[i].n {
			if err := b.call(ctx, r, opCreateRecord, jobs[i].a); err != nil {
				return fmt.Errorf("bench: filling %s with records: %w", jobs[i].a.DID, err)
			}
			done.Add(1)
		}
		return nil
	})
	stop()
	if err == nil {
		fmt.Fprintf(b.c.stderr, "bench: records: %d created; every account holds at least %d\n", done.Load(), want)
	}
	return err
}

// countRecords counts an account's records in every collection, stopping
// once it has counted upTo (0: count them all).
func (b *bench) countRecords(ctx context.Context, a *benchAccount, upTo int) (int, error) {
	colls, err := b.collections(ctx, a)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, coll := range colls {
		err := b.listAll(ctx, a, coll, func(page int) bool {
			n += page
			return upTo <= 0 || n < upTo
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (b *bench) collections(ctx context.Context, a *benchAccount) ([]string, error) {
	var out struct {
		Collections []string `json:"collections"`
	}
	if err := b.timed(opDescribeRepo, func() error {
		return b.xrpc(ctx, "GET", "com.atproto.repo.describeRepo", url.Values{"repo": {a.DID}}, "", nil, &out)
	}); err != nil {
		return nil, fmt.Errorf("bench: describeRepo %s: %w", a.DID, err)
	}
	return out.Collections, nil
}

// listAll pages through one collection, calling page with each page's
// record count until it returns false or the pages end.
func (b *bench) listAll(ctx context.Context, a *benchAccount, coll string, page func(int) bool) error {
	cursor := ""
	for {
		var out struct {
			Cursor  string     `json:"cursor"`
			Records []skipJSON `json:"records"`
		}
		q := url.Values{"repo": {a.DID}, "collection": {coll}, "limit": {strconv.Itoa(benchListPage)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := b.timed(opListRecords, func() error {
			return b.xrpc(ctx, "GET", "com.atproto.repo.listRecords", q, "", nil, &out)
		}); err != nil {
			return fmt.Errorf("bench: listRecords %s %s: %w", a.DID, coll, err)
		}
		if !page(len(out.Records)) || out.Cursor == "" || len(out.Records) == 0 {
			return nil
		}
		cursor = out.Cursor
	}
}

// skipJSON skips a record's content: only the count matters.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

// getRepo streams an account's whole repo as a CAR and discards it,
// returning its size.
func (b *bench) getRepo(ctx context.Context, did string) (int64, error) {
	var n int64
	err := b.timed(opGetRepo, func() error {
		ctx, cancel := context.WithTimeout(ctx, benchStreamTimout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", b.c.target+"/xrpc/com.atproto.sync.getRepo?"+url.Values{"did": {did}}.Encode(), nil)
		if err != nil {
			return err
		}
		stream := *b.http
		stream.Timeout = 0 // bounded by ctx instead: a big repo takes longer than a call
		resp, err := stream.Do(req)
		if err != nil {
			return &xrpcCallError{msg: err.Error()}
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &xrpcCallError{status: resp.StatusCode, name: "HTTP" + strconv.Itoa(resp.StatusCode), msg: "getRepo " + did}
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.ipld.car") {
			return &xrpcCallError{status: resp.StatusCode, name: "BadContentType", msg: "getRepo " + did + ": " + ct}
		}
		n, err = io.Copy(io.Discard, resp.Body)
		if err != nil {
			return &xrpcCallError{msg: err.Error()}
		}
		return nil
	})
	return n, err
}

// timed runs one call and records it under op.
func (b *bench) timed(op string, call func() error) error {
	s := b.stats[op]
	start := time.Now()
	err := call()
	if s != nil {
		if err != nil {
			s.fail(benchErrorName(err))
		} else {
			s.ok(time.Since(start))
		}
	}
	return err
}

// each runs fn(0..n-1) on --concurrency workers, stopping at the first
// error or when ctx ends.
func (b *bench) each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(b.c.concurrency, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx) // nil unless fn failed or ctx ended
}

// reportProgress prints line(elapsed) on stderr until stopped: redrawn on
// a terminal, a line every few seconds otherwise.
func (b *bench) reportProgress(line func(time.Duration) string) (stop func()) {
	tty := isTerminal(b.c.stderr)
	every := benchFillReport
	if tty {
		every = 250 * time.Millisecond
	}
	done, finished := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(b.c.stderr)
				}
				return
			case <-t.C:
			}
			if tty {
				fmt.Fprintf(b.c.stderr, "\r%s   ", line(time.Since(start)))
			} else {
				fmt.Fprintln(b.c.stderr, line(time.Since(start)))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// rssSampler follows the server's RSS while a pass runs.
type rssSampler struct {
	pid    int
	mu     sync.Mutex
	peak   float64
	hwmOK  bool // VmHWM was reset, so it bounds the peak between samples
	stopCh chan struct{}
	done   chan struct{}
}

// startRSS resets the kernel's peak-RSS mark where allowed and samples
// VmRSS until stopped. It returns nil without --pid.
func (b *bench) startRSS() *rssSampler {
	if b.c.pid <= 0 {
		return nil
	}
	s := &rssSampler{pid: b.c.pid, stopCh: make(chan struct{}), done: make(chan struct{})}
	// "5" resets VmHWM to the current RSS (Linux clear_refs).
	s.hwmOK = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid), []byte("5"), 0) == nil
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(benchRSSInterval)
		defer t.Stop()
		for {
			select {
			case <-s.stopCh:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	rss, hwm, err := readRSS(s.pid)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peak = max(s.peak, rss)
	if s.hwmOK {
		s.peak = max(s.peak, hwm)
	}
}

// stop ends sampling and returns the peak RSS in MB.
func (s *rssSampler) stop() float64 {
	if s == nil {
		return 0
	}
	s.sample()
	close(s.stopCh)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

func (b *bench) rssNow() float64 {
	if b.c.pid <= 0 {
		return 0
	}
	rss, _, err := readRSS(b.c.pid)
	if err != nil {
		return 0
	}
	return rss
}

// runPass runs --mix readall or getrepo.
func (b *bench) runPass(ctx context.Context) (*benchPass, time.Duration, error) {
	p := &benchPass{Accounts: len(b.accts)}
	var records, bytes atomic.Int64
	start := time.Now()
	switch b.c.mix {
	case mixReadAll:
		p.RSSBeforeMB = b.rssNow()
		rs := b.startRSS()
		var done atomic.Int64
		stop := b.reportProgress(func(el time.Duration) string {
			return fmt.Sprintf("bench: readall: %d of %d accounts, %s read", done.Load(), len(b.accts), humanBytes(bytes.Load()))
		})
		// A failed call is counted and the pass goes on: the report says
		// how many failed.
		_ = b.each(ctx, len(b.accts), func(ctx context.Context, i int) error {
			a := b.accts[i]
			if n, err := b.getRepo(ctx, a.DID); err == nil {
				bytes.Add(n)
			}
			if colls, err := b.collections(ctx, a); err == nil {
				for _, coll := range colls {
					_ = b.listAll(ctx, a, coll, func(n int) bool { records.Add(int64(n)); return true })
				}
			}
			done.Add(1)
			return nil
		})
		stop()
		p.RSSPeakMB = rs.stop()
		p.RSSAfterMB = b.rssNow()
	case mixGetRepo:
		p.RSSBeforeMB = b.rssNow()
		for _, a := range b.accts {
			if ctx.Err() != nil {
				break
			}
			n, err := b.countRecords(ctx, a, 0)
			if err != nil {
				continue
			}
			records.Add(int64(n))
			st := benchRepoStream{DID: a.DID, Records: int64(n)}
			runtimeSettle()
			st.BaselineMB = b.rssNow()
			rs := b.startRSS()
			t0 := time.Now()
			size, err := b.getRepo(ctx, a.DID)
			st.Seconds = time.Since(t0).Seconds()
			st.PeakMB = rs.stop()
			if err != nil {
				continue
			}
			bytes.Add(size)
			st.Bytes = size
			if b.c.pid > 0 {
				st.GrowthPeakMB = max(0, st.PeakMB-st.BaselineMB)
				p.RSSPeakMB = max(p.RSSPeakMB, st.PeakMB)
				p.GrowthPeakMB = max(p.GrowthPeakMB, st.GrowthPeakMB)
			}
			p.Repos = append(p.Repos, st)
		}
		p.RSSAfterMB = b.rssNow()
	}
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return nil, 0, ctx.Err()
	}
	p.DurationSec = elapsed.Seconds()
	p.Records, p.GetRepoBytes = records.Load(), bytes.Load()
	for _, s := range b.stats {
		s.mu.Lock()
		p.Calls += s.count
		for _, e := range s.errors {
			p.Errors += e
		}
		s.mu.Unlock()
	}
	return p, elapsed, nil
}

// runtimeSettle gives the server a moment after the counting calls so the
// baseline is not taken mid-request.
func runtimeSettle() { time.Sleep(100 * time.Millisecond) }

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// printPass writes a pass's figures under the table.
func (p *benchPass) print(w io.Writer, mix string, pid bool) {
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
