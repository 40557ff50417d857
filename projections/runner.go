package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pdslog/pdslog/eventlog"
)

// DefaultBatchSize is how many events a Runner hands a projection at once.
const DefaultBatchSize = 1000

// Runner feeds projections from the log.
type Runner struct {
	src    Source
	logger *slog.Logger
	batch  int
	feeds  []*feed
	// OnApply, if set, is called after each applied batch (progress,
	// metrics). Rebuild calls it from the goroutines that apply the
	// projections, concurrently.
	OnApply func(name string, cursor eventlog.Seq, events int, took time.Duration)
}

type feed struct {
	p      Projection
	mu     sync.Mutex    // one feeder at a time
	cursor atomic.Uint64 // cached cursor; valid when loaded is set
	loaded atomic.Bool
}

// RunnerOptions configure a Runner; nil means defaults.
type RunnerOptions struct {
	BatchSize int          // events per Apply; default DefaultBatchSize
	Logger    *slog.Logger // nil means slog.Default()
}

// NewRunner returns a Runner feeding ps from src.
func NewRunner(src Source, ps []Projection, opts *RunnerOptions) *Runner {
	if opts == nil {
		opts = &RunnerOptions{}
	}
	r := &Runner{src: src, batch: opts.BatchSize, logger: opts.Logger}
	if r.batch <= 0 {
		r.batch = DefaultBatchSize
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	r.logger = r.logger.With("component", "runner")
	for _, p := range ps {
		r.feeds = append(r.feeds, &feed{p: p})
	}
	return r
}

// Projections returns the names of the runner's projections, in order.
func (r *Runner) Projections() []string {
	names := make([]string, len(r.feeds))
	for i, f := range r.feeds {
		names[i] = f.p.Name()
	}
	return names
}

func (r *Runner) lookup(name string) (*feed, error) {
	for _, f := range r.feeds {
		if f.p.Name() == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownProjection, name)
}

// CatchUp returns once every projection has applied the log through seq to
// (which must be durable). It applies everything durable at the time, so
// concurrent callers share the work: this is the read-your-writes call.
func (r *Runner) CatchUp(ctx context.Context, to eventlog.Seq) error {
	var behind []*feed
	for _, f := range r.feeds {
		if c, err := f.get(ctx); err != nil || c < to {
			behind = append(behind, f)
		}
	}
	if len(behind) == 0 {
		return nil
	}
	// Locks are taken in the runner's order, so that callers never wait
	// on each other in a cycle.
	for _, f := range behind {
		f.mu.Lock()
	}
	defer func() {
		for _, f := range behind {
			f.mu.Unlock()
		}
	}()
	return r.catchUpLocked(ctx, behind, to)
}

func (f *feed) get(ctx context.Context) (eventlog.Seq, error) {
	if f.loaded.Load() {
		return eventlog.Seq(f.cursor.Load()), nil
	}
	c, err := f.p.Cursor(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: cursor: %w", f.p.Name(), err)
	}
	f.cursor.Store(uint64(c))
	f.loaded.Store(true)
	return c, nil
}

// catchUp brings one projection up to to (see CatchUp).
func (r *Runner) catchUp(ctx context.Context, f *feed, to eventlog.Seq) error {
	if c, err := f.get(ctx); err == nil && c >= to {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return r.catchUpLocked(ctx, []*feed{f}, to)
}

// catchUpLocked applies everything durable to those of feeds (whose locks
// the caller holds) that are behind to, reading the log once from the
// furthest-behind cursor: each projection gets the events past its own.
func (r *Runner) catchUpLocked(ctx context.Context, feeds []*feed, to eventlog.Seq) error {
	var work []*feed
	low := eventlog.Seq(math.MaxUint64)
	for _, f := range feeds {
		c, err := f.get(ctx)
		if err != nil {
			return err
		}
		if c < to {
			work = append(work, f)
			low = min(low, c)
		}
	}
	if len(work) == 0 {
		return nil
	}
	head := r.src.Head()
	if to > head {
		return fmt.Errorf("%s: catch up to %d: %w (head %d)", work[0].p.Name(), to, eventlog.ErrFutureCursor, head)
	}
	it, err := r.src.Iter(ctx, low)
	if err != nil {
		return fmt.Errorf("%s: %w", work[0].p.Name(), err)
	}
	defer it.Close()
	batch := make([]*eventlog.Event, 0, min(r.batch, int(head-low)))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		last := batch[len(batch)-1].Seq
		for _, f := range work {
			cur := eventlog.Seq(f.cursor.Load())
			if cur >= last {
				continue
			}
			evs := batch
			for len(evs) > 0 && evs[0].Seq <= cur {
				evs = evs[1:]
			}
			if err := r.apply(ctx, f, evs); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	for it.Next() {
		batch = append(batch, it.Event())
		if len(batch) >= r.batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("%s: read log: %w", work[0].p.Name(), err)
	}
	return flush()
}

// apply hands evs (non-empty, all past f's cursor) to f's projection and
// advances f's cursor; the caller holds f's lock.
func (r *Runner) apply(ctx context.Context, f *feed, evs []*eventlog.Event) error {
	start := time.Now()
	if err := f.p.Apply(ctx, evs); err != nil {
		f.loaded.Store(false) // re-read the stored cursor next time
		return fmt.Errorf("%s: %w", f.p.Name(), err)
	}
	last := evs[len(evs)-1].Seq
	f.cursor.Store(uint64(last))
	f.loaded.Store(true)
	if r.OnApply != nil {
		r.OnApply(f.p.Name(), last, len(evs), time.Since(start))
	}
	return nil
}

// Run follows the log until ctx ends, keeping every projection caught up.
// A projection whose Apply fails is retried with backoff; the others go on.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range r.feeds {
		wg.Go(func() { r.follow(ctx, f) })
	}
	wg.Wait()
	return context.Cause(ctx)
}

func (r *Runner) follow(ctx context.Context, f *feed) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		cursor, err := f.get(ctx)
		if err == nil {
			if _, err = r.src.Wait(ctx, cursor); err == nil {
				err = r.catchUp(ctx, f, r.src.Head())
			}
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if ctx.Err() != nil || errors.Is(err, eventlog.ErrClosed) {
			return
		}
		r.logger.Error("projection failed; retrying", "projection", f.p.Name(), "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff + rand.N(backoff/2)):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Rebuild resets the named projections (all when names is empty) and
// replays them from the log's first event to its current head.
func (r *Runner) Rebuild(ctx context.Context, names ...string) error {
	feeds := r.feeds
	if len(names) > 0 {
		feeds = nil
		for _, n := range names {
			f, err := r.lookup(n)
			if err != nil {
				return err
			}
			feeds = append(feeds, f)
		}
	}
	head := r.src.Head()
	for _, f := range feeds {
		f.mu.Lock()
		defer f.mu.Unlock()
		err := f.p.Reset(ctx)
		f.loaded.Store(false)
		if err != nil {
			return fmt.Errorf("%s: reset: %w", f.p.Name(), err)
		}
		r.logger.Debug("projection reset", "projection", f.p.Name())
	}
	return r.replay(ctx, feeds, head)
}

// replay feeds the log from the start through head to freshly reset
// projections in one pass: each batch is read and decoded once and handed
// to every projection, the projections applying it concurrently (each in
// its own Pebble batch with its own cursor, as incremental apply does).
// The caller holds every feed's lock.
func (r *Runner) replay(ctx context.Context, feeds []*feed, head eventlog.Seq) error {
	it, err := r.src.Iter(ctx, 0)
	if err != nil {
		return err
	}
	defer it.Close()
	errs := make([]error, len(feeds))
	apply := func(batch []*eventlog.Event) error {
		var wg sync.WaitGroup
		for i, f := range feeds {
			wg.Go(func() { errs[i] = r.apply(ctx, f, batch) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	// Batches alternate between two buffers: the next one is read while
	// the projections apply the last (events are not shared across
	// batches, and projections do not keep them).
	bufs := [2][]*eventlog.Event{make([]*eventlog.Event, 0, r.batch), make([]*eventlog.Event, 0, r.batch)}
	cur := 0
	pending := make(chan error, 1)
	inFlight := false
	wait := func() error {
		if !inFlight {
			return nil
		}
		inFlight = false
		return <-pending
	}
	for it.Next() {
		ev := it.Event()
		if ev.Seq > head {
			break
		}
		bufs[cur] = append(bufs[cur], ev)
		if len(bufs[cur]) < r.batch {
			continue
		}
		if err := wait(); err != nil {
			return err
		}
		batch := bufs[cur]
		inFlight = true
		go func() { pending <- apply(batch) }()
		cur = 1 - cur
		bufs[cur] = bufs[cur][:0]
	}
	if err := wait(); err != nil {
		return err
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	if len(bufs[cur]) > 0 {
		return apply(bufs[cur])
	}
	return nil
}

// Status reports each projection's cursor against the log head.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	head := r.src.Head()
	out := make([]Status, 0, len(r.feeds))
	for _, f := range r.feeds {
		c, err := f.get(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, Status{Name: f.p.Name(), Cursor: c, Head: head})
	}
	return out, nil
}
