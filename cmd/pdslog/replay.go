package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections"
)

type replayCommand struct {
	stdout, stderr io.Writer
	common
	projection string
	verify     bool
	batch      int
}

const replaySummary = `Rebuild projections from the event log: each named projection is reset and
replayed from the first event to the log's current head. Safe to interrupt
and rerun. Refuses to run while 'pdslog serve' holds the data dir.
With --verify, first check the log itself and report the first divergence
with its seq: dense seqs, commit chains (since, rev, prevData), repo heads,
every commit's signature under the account's key, its record blocks, and
that inverting its ops on its own blocks gives back prevData.`

func (c *replayCommand) run(ctx context.Context, args []string) error {
	f := newFlags("replay", replaySummary, c.stderr)
	c.register(f)
	f.String(&c.projection, "projection", "all", "projection to rebuild: all, or a name", "PDSLOG_REPLAY_PROJECTION")
	f.Bool(&c.verify, "verify", false, "verify the log before rebuilding")
	f.Int(&c.batch, "batch", projections.DefaultBatchSize, "events per projection batch")
	if err := f.parse(args); err != nil {
		return err
	}
	if c.batch <= 0 {
		return usageError{"--batch must be positive"}
	}
	logger, err := c.logger(c.stderr)
	if err != nil {
		return err
	}
	d, err := pds.Open(c.dataDir, &pds.Options{Command: "replay", Logger: logger, BatchSize: c.batch})
	if err != nil {
		return err
	}
	defer d.Close()

	var names []string
	if c.projection != "all" {
		names = strings.Split(c.projection, ",")
		for _, n := range names {
			if !slices.Contains(d.Runner.Projections(), n) {
				return usageError{fmt.Sprintf("unknown projection %q (have: all, %s)", n, strings.Join(d.Runner.Projections(), ", "))}
			}
		}
	}
	head := d.Log.Head()
	if c.verify {
		p := newProgress(c.stdout, logger, "verify")
		p.start(head)
		start := time.Now()
		err := d.Log.Verify(ctx, &eventlog.VerifyOptions{
			Check:    commit.NewVerifier().Check,
			Progress: func(s eventlog.Seq) { p.update("log", s) },
		})
		p.finish()
		var ve *eventlog.VerifyError
		if errors.As(err, &ve) {
			return fmt.Errorf("log diverges at seq %d: %s", ve.Seq, ve.Reason)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "verify: %d events ok in %s\n", head, time.Since(start).Round(time.Millisecond))
	}
	p := newProgress(c.stdout, logger, "replay")
	p.start(head)
	// The projections advance together (one pass over the log): progress
	// is the slowest one's cursor.
	var mu sync.Mutex
	cursors := map[string]eventlog.Seq{}
	label := strings.Join(names, ",")
	if label == "" {
		label = "all projections"
	}
	d.Runner.OnApply = func(name string, cursor eventlog.Seq, _ int, _ time.Duration) {
		mu.Lock()
		cursors[name] = cursor
		low := cursor
		for _, c := range cursors {
			low = min(low, c)
		}
		complete := len(cursors) == len(d.Runner.Projections()) || len(names) > 0 && len(cursors) == len(names)
		mu.Unlock()
		if complete {
			p.update(label, low)
		}
	}
	if os.Getenv("GOGC") == "" {
		// Replay allocates fast and keeps little (two batches of events):
		// collecting at 4× the live heap instead of 2× (300k-event replay,
		// same data dir, loaded box: 15.2 s → 10.4 s; RSS ~240 MB).
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	start := time.Now()
	err = d.Runner.Rebuild(ctx, names...)
	p.finish()
	if err != nil {
		return err
	}
	took := time.Since(start)
	rebuilt := names
	if len(rebuilt) == 0 {
		rebuilt = d.Runner.Projections()
	}
	// The rate is of log events: how fast the whole data dir is rebuilt
	// (each event is applied once per projection).
	fmt.Fprintf(c.stdout, "replay: rebuilt %s through seq %d in %s (%s log events/s)\n",
		strings.Join(rebuilt, ", "), head, took.Round(time.Millisecond), human(float64(head)/took.Seconds()))
	return nil
}
