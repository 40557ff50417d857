package pds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/blobs"
)

// DefaultBlobGrace is how long an unreferenced blob (never referenced
// since its upload, or dereferenced by its last record's update or
// deletion) is kept before the collector deletes it.
const DefaultBlobGrace = time.Hour

// DefaultBlobCollectInterval is how often the collector looks for blobs
// past their grace.
const DefaultBlobCollectInterval = 5 * time.Minute

// PutBlob stores an upload's bytes (size bytes read from r, whose CID the
// caller computed while receiving them) under did and records it with a
// blob.uploaded event, under the account's lock (which the collector takes
// too, so a blob just uploaded again restarts its grace rather than
// vanishing). mimeType is what the bytes were sniffed as, declared the
// upload's Content-Type.
func (p *PDS) PutBlob(ctx context.Context, did syntax.DID, c cid.Cid, r io.Reader, size int64, mimeType, declared string) error {
	unlock := p.Lock(did)
	defer unlock()
	// A deactivated account may upload: migration brings its blobs before
	// it is activated (the reference checks takedowns only).
	if _, err := p.changeable(ctx, did); err != nil {
		return err
	}
	if err := p.BlobStore.Put(ctx, did, c, r, size); err != nil {
		return fmt.Errorf("pds: store blob: %w", err)
	}
	ev, err := events.New(did, &events.BlobUploaded{CID: c.String(), MimeType: mimeType, DeclaredMime: declared, Size: size})
	if err != nil {
		return err
	}
	_, err = p.commit(ctx, ev)
	return err
}

// SetQuarantine takes did's blob c down (on: the bytes are kept but not
// served) or restores it. It reports whether anything changed.
func (p *PDS) SetQuarantine(ctx context.Context, did syntax.DID, c cid.Cid, on bool) (bool, error) {
	unlock := p.Lock(did)
	defer unlock()
	if _, err := p.account(ctx, did); err != nil {
		return false, err
	}
	b, err := p.Blobs.Get(ctx, did, c)
	if errors.Is(err, blobs.ErrNotFound) {
		return false, &Error{Kind: ErrBlobNotFound, Msg: "Blob not found"}
	}
	if err != nil {
		return false, err
	}
	if b.Quarantined == on {
		return false, nil
	}
	ev, err := events.New(did, &events.BlobQuarantine{CID: c.String(), On: on})
	if err != nil {
		return false, err
	}
	_, err = p.commit(ctx, ev)
	return err == nil, err
}

// CollectBlobs deletes the blobs no record has referenced for the grace
// period and returns how many. Each is re-checked under its account's lock,
// where a write referencing it would also have to run: a blob referenced
// again in the meantime, or uploaded again (which restarts its grace), is
// kept. The deletion is recorded in the log first, then the bytes are
// removed; a crash between leaves unreachable bytes, never a reachable
// blob without bytes.
func (p *PDS) CollectBlobs(ctx context.Context) (int, error) {
	cutoff := p.Now().Add(-p.opts.BlobGrace)
	n := 0
	for {
		cands, err := p.Blobs.Candidates(ctx, cutoff, 100)
		if err != nil {
			return n, err
		}
		if len(cands) == 0 {
			return n, nil
		}
		progressed := false
		for _, cd := range cands {
			deleted, err := p.collectOne(ctx, cd, cutoff)
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

func (p *PDS) collectOne(ctx context.Context, cd blobs.Candidate, cutoff time.Time) (bool, error) {
	c, err := cid.Decode(cd.CID)
	if err != nil {
		return false, fmt.Errorf("pds: blob candidate %s: %w", cd.CID, err)
	}
	unlock := p.Lock(cd.DID)
	defer unlock()
	if err := p.Runner.CatchUp(ctx, p.Log.Head()); err != nil {
		return false, err
	}
	b, err := p.Blobs.Get(ctx, cd.DID, c)
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
	if _, err := p.commit(ctx, ev); err != nil {
		return false, err
	}
	if err := p.BlobStore.Delete(ctx, cd.DID, c); err != nil {
		return true, fmt.Errorf("pds: delete blob bytes %s of %s: %w", cd.CID, cd.DID, err)
	}
	p.opts.Logger.Debug("deleted blob", "did", cd.DID, "cid", cd.CID)
	return true, nil
}

// collector runs CollectBlobs every BlobCollectInterval.
type collector struct {
	p      *PDS
	logger *slog.Logger
}

func (g *collector) run(ctx context.Context) error {
	t := time.NewTicker(g.p.opts.BlobCollectInterval)
	defer t.Stop()
	for {
		if n, err := g.p.CollectBlobs(ctx); err != nil && ctx.Err() == nil {
			g.logger.Error("collect blobs", "err", err)
		} else if n > 0 {
			g.logger.Info("collected blobs", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
