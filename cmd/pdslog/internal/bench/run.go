package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of a run's own bookkeeping.
const (
	seedRecords    = 5 // records each account has before a read mix starts
	knownPerRepo   = 1024
	catchUpTimeout = 30 * time.Second
)

// Run sets up cfg.Accounts accounts on cfg.Target, applies the load (or
// runs the pass) and writes the report to stdout, as a table or, with
// cfg.JSON, one JSON document; progress and notices go to stderr. It
// returns ctx's error when ctx ends first, and ErrInviteRequired when the
// target requires invite codes and cfg has no admin password.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	if err := cfg.check(); err != nil {
		return err
	}
	rep, err := newRunner(cfg, stderr).run(ctx)
	if err != nil {
		return err
	}
	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(stdout)
	return nil
}

// runner is one run.
type runner struct {
	cfg    Config
	stderr io.Writer
	http   *http.Client
	mix    []weight
	weight int // sum of mix's weights
	stats  map[string]*opStats
	accts  []*account
	blobs  *pacer
	domain string // handle domain new accounts sign up under

	ackedCommits atomic.Int64 // write calls that got a 200: one commit each
}

func newRunner(cfg Config, stderr io.Writer) *runner {
	b := &runner{cfg: cfg, stderr: stderr, mix: weights(cfg.Mix), stats: map[string]*opStats{},
		http: newHTTPClient(cfg.Concurrency), blobs: newPacer(cfg.BlobPerMinute)}
	for _, w := range b.mix {
		b.weight += w.weight
		b.stats[w.op] = newOpStats()
	}
	return b
}

func (b *runner) run(ctx context.Context) (*Report, error) {
	if err := b.setupAccounts(ctx); err != nil {
		return nil, err
	}
	if b.cfg.Records > 0 {
		if err := b.fillRecords(ctx); err != nil {
			return nil, err
		}
		b.ackedCommits.Store(0)
	}
	for op := range b.stats {
		b.stats[op] = newOpStats() // calls made while setting up are not the measured phase's
	}
	rep := &Report{Target: b.cfg.Target, Mix: b.cfg.Mix, Accounts: b.cfg.Accounts, Concurrency: b.cfg.Concurrency}
	if isPass(b.cfg.Mix) {
		return b.pass(ctx, rep)
	}
	return b.load(ctx, rep)
}

// pass runs a readall or getrepo pass.
func (b *runner) pass(ctx context.Context, rep *Report) (*Report, error) {
	p, elapsed, err := b.runPass(ctx)
	if err != nil {
		return nil, err
	}
	rep.Pass, rep.DurationSec = p, elapsed.Seconds()
	rep.BoxCores = runtime.NumCPU()
	b.opsReport(rep, elapsed)
	return rep, nil
}

// load applies the timed load with the firehose subscribers following it.
func (b *runner) load(ctx context.Context, rep *Report) (*Report, error) {
	srv, err := watchServer(b.cfg.PID)
	if err != nil {
		return nil, err
	}
	var subs *subscribers
	if b.cfg.Subscribers > 0 {
		if subs, err = b.startSubscribers(ctx); err != nil {
			return nil, err
		}
		defer subs.close()
	}
	srv.startCPU()
	elapsed, loadEnd, srvCPU := b.drive(ctx, rep, srv)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.DurationSec = elapsed.Seconds()
	if subs != nil {
		rep.Firehose = subs.finish(ctx, b.ackedCommits.Load(), loadEnd)
	}
	rep.Server = srv.report(srvCPU, elapsed)
	b.opsReport(rep, elapsed)
	return rep, nil
}

// drive runs the clients until the deadline and measures the CPU this
// process, the machine and the server (srv) spent meanwhile. Clients stop
// starting calls at the deadline but finish the one in flight, so every
// write sent is either acknowledged or failed.
func (b *runner) drive(ctx context.Context, rep *Report, srv *serverWatch) (elapsed time.Duration, end time.Time, srvCPU time.Duration) {
	cpu0, box0 := selfCPU(), boxCPU()
	start := time.Now()
	deadline := start.Add(b.cfg.Duration)
	stopProgress := b.progress()
	var wg sync.WaitGroup
	for i := range b.cfg.Concurrency {
		wg.Go(func() { b.client(ctx, deadline, i) })
	}
	wg.Wait()
	elapsed, end = time.Since(start), time.Now()
	rep.BenchCPUCores = (selfCPU() - cpu0).Seconds() / elapsed.Seconds()
	if box1 := boxCPU(); box0 > 0 && box1 > box0 {
		rep.BoxCPUCores = (box1 - box0).Seconds() / elapsed.Seconds()
	}
	rep.BoxCores = runtime.NumCPU()
	srvCPU = srv.cpu()
	stopProgress()
	return elapsed, end, srvCPU
}

// each runs fn(0..n-1) on Concurrency workers, stopping at the first
// error or when ctx ends.
func (b *runner) each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(b.cfg.Concurrency, n) {
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
