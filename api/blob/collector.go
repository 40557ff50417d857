package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/blobs"
)

// DefaultGrace is how long an unreferenced blob (never referenced since its
// upload, or dereferenced by its last record's update or deletion) is kept
// before the collector deletes it.
const DefaultGrace = time.Hour

// DefaultCollectInterval is how often the collector looks for blobs past
// their grace.
const DefaultCollectInterval = 5 * time.Minute

// Collector deletes blobs no record has referenced for Grace.
type Collector struct {
	*Handlers
	Grace    time.Duration // 0 means DefaultGrace
	Interval time.Duration // 0 means DefaultCollectInterval
	Logger   *slog.Logger  // nil means slog.Default()
}

func (g *Collector) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.Default()
}

// Run collects every Interval until ctx ends.
func (g *Collector) Run(ctx context.Context) error {
	every := g.Interval
	if every <= 0 {
		every = DefaultCollectInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := g.Collect(ctx); err != nil && ctx.Err() == nil {
			g.logger().Error("collect blobs", "err", err)
		} else if n > 0 {
			g.logger().Info("collected blobs", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Collect deletes the blobs whose grace has passed and returns how many.
// Each is re-checked under its account's write lock, where a write
// referencing it would also have to run: a blob referenced again in the
// meantime, or uploaded again (which restarts its grace), is kept. The
// deletion is recorded in the log first, then the bytes are removed; a
// crash between leaves unreachable bytes, never a reachable blob without
// bytes.
func (g *Collector) Collect(ctx context.Context) (int, error) {
	grace := g.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	cutoff := g.now().Add(-grace)
	n := 0
	for {
		cands, err := g.Index.Candidates(ctx, cutoff, 100)
		if err != nil {
			return n, err
		}
		if len(cands) == 0 {
			return n, nil
		}
		progressed := false
		for _, cd := range cands {
			deleted, err := g.collectOne(ctx, cd, cutoff)
			if err != nil {
				return n, err
			}
			if deleted {
				n++
				progressed = true
			}
		}
		if !progressed {
			return n, nil
		}
	}
}

func (g *Collector) collectOne(ctx context.Context, cd blobs.Candidate, cutoff time.Time) (bool, error) {
	c, err := cid.Decode(cd.CID)
	if err != nil {
		return false, fmt.Errorf("candidate %s: %w", cd.CID, err)
	}
	unlock := g.Writer.Lock(cd.DID)
	defer unlock()
	if err := g.Runner.CatchUp(ctx, g.Log.Head()); err != nil {
		return false, err
	}
	b, err := g.Index.Get(ctx, cd.DID, c)
	if errors.Is(err, blobs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !b.Uploaded || b.Refs > 0 || b.Unreferenced == 0 || !time.Unix(0, b.Unreferenced).Before(cutoff) {
		return false, nil
	}
	ev, err := events.New(cd.DID, &events.BlobDeleted{CID: cd.CID, Reason: "unreferenced"})
	if err != nil {
		return false, err
	}
	seq, err := g.Log.Append(ctx, ev)
	if err != nil {
		return false, err
	}
	if err := g.Runner.CatchUp(ctx, seq); err != nil {
		return false, err
	}
	if err := g.Store.Delete(ctx, cd.DID, c); err != nil {
		return true, fmt.Errorf("delete blob bytes %s of %s: %w", cd.CID, cd.DID, err)
	}
	g.logger().Debug("deleted blob", "did", cd.DID, "cid", cd.CID)
	return true, nil
}
