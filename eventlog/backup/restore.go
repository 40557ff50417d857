package backup

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/backup/objstore"
	"github.com/pdslog/pdslog/eventlog/blobstore"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	Target *Target // required
	// Generation to restore; "" means the one whose last shipped event is
	// the newest.
	Generation string
	// AtTime, if set, restores the log as it stood at that moment: the
	// events up to (not including) the first one appended after it.
	AtTime time.Time
	// AtSeq, if set, restores events up to and including this seq.
	AtSeq eventlog.Seq
	// LogDir is where the log is written; it must not exist or be empty.
	// The log is built in LogDir+".restoring" and renamed into place once
	// complete, so an interrupted restore leaves no half log at LogDir.
	LogDir string
	// KeysDir receives the backup's keys; SealKeyName is the log's seal
	// key among them (eventlog.SealKeyFile's name in the data dir).
	KeysDir     string
	SealKeyName string
	Identities  []age.Identity
	// BlobDest receives the blobs of restored events that the backup
	// holds (nil: blobs are not restored).
	BlobDest   blobstore.Store
	BlobEvents BlobEvents
	// Check, if set, verifies each restored event (commit signatures and
	// proofs, as replay --verify does). Events of one account reach it in
	// seq order.
	Check func(ctx context.Context, ev *eventlog.Event) error
	// Progress, if set, is called as events are written, with the last
	// seq written and the backup's last seq.
	Progress func(done, total eventlog.Seq)
	// Prefetch is how many segments are downloaded ahead. Default 4.
	Prefetch int
	Logger   *slog.Logger
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Generation string
	// Restored is the last seq written to the log; Shipped the last seq
	// the backup holds; SeqFloor the floor the log must be opened with
	// (the highest seq ever handed out, as far as the backup knows).
	Restored, Shipped, SeqFloor eventlog.Seq
	// StoppedBy says why the restore ended before Shipped: "seq", "time"
	// or "" (it reached the end of the backup).
	StoppedBy                         string
	Segments                          int
	SegmentBytes                      int64
	Purged                            int
	Blobs, BlobsMissing, BlobBytes    int64
	BlobLocation                      BlobsInfo
	KeysRestored                      int
	LastEventTime                     time.Time
	Took                              time.Duration
	Download, Import, CheckTime, Wait time.Duration
}

// Generations lists the backup's generations with their manifests, oldest
// first (a manifest that cannot be read is left out).
func Generations(ctx context.Context, t *Target) ([]*Manifest, error) {
	gens, err := listGenerations(ctx, t.Objects)
	if err != nil {
		return nil, err
	}
	var out []*Manifest
	for _, g := range gens {
		m, err := readManifest(ctx, t.Objects, g)
		if err != nil {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// LatestGeneration picks the generation whose last shipped event is the
// newest (a generation started by a restore overtakes the one it came
// from once it has shipped anything newer).
func LatestGeneration(ctx context.Context, t *Target) (*Manifest, error) {
	ms, err := Generations(ctx, t)
	if err != nil {
		return nil, err
	}
	var best *Manifest
	for _, m := range ms {
		if best == nil || !m.HeadTime.Before(best.HeadTime) {
			best = m
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: %s has no generation", ErrNoBackup, t.URL)
	}
	return best, nil
}

// Restore writes a backup (or its state at a point in time) into an empty
// log directory, with the keys and blobs: segments are downloaded a few
// ahead and each verified (checksums, one record per seq) before any of
// it is written; every event goes through eventlog.Importer (dense seqs,
// commit chains) and Check; account deletions purge as they did on the
// server. Memory stays bounded by the prefetch window whatever the size.
// The caller then opens the log with the result's SeqFloor and rebuilds
// the projections.
func Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 4
	}
	if o.BlobEvents == nil {
		o.BlobEvents = BlobsOfEvent
	}
	if o.SealKeyName == "" {
		o.SealKeyName = eventlog.SealKeyFile
	}
	log := o.Logger.With("component", "restore")
	if ents, err := os.ReadDir(o.LogDir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%w: %s holds a log", ErrNotEmpty, o.LogDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var man *Manifest
	var err error
	if o.Generation == "" {
		man, err = LatestGeneration(ctx, o.Target)
	} else {
		man, err = readManifest(ctx, o.Target.Objects, o.Generation)
		if errors.Is(err, objstore.ErrNotExist) {
			err = fmt.Errorf("%w: no generation %s at %s", ErrNoBackup, o.Generation, o.Target.URL)
		}
	}
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Generation: man.Generation, BlobLocation: man.Blobs}
	log.Info("restoring", "url", o.Target.URL, "generation", man.Generation, "head", man.Head, "head_time", man.HeadTime)

	// Keys first: the log's secret payloads are sealed under seal.key.
	sealKey, err := restoreKeys(ctx, o, man, res)
	if err != nil {
		return nil, err
	}
	work := o.LogDir + ".restoring"
	if err := os.RemoveAll(work); err != nil {
		return nil, err
	}
	im, err := eventlog.OpenImporter(work, &eventlog.ImportOptions{SealKey: sealKey, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	closed, renamed := false, false
	defer func() {
		if !closed {
			_ = im.Close()
		}
		if !renamed {
			_ = os.RemoveAll(work) // a failed restore leaves nothing behind
		}
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blobs := newBlobRestorer(ctx, o, res)
	err = restoreSegments(ctx, o, man, im, blobs, res)
	if berr := blobs.wait(); err == nil {
		err = berr
	}
	if err != nil {
		return nil, err
	}
	closed = true
	if err := im.Close(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(o.LogDir), 0o700); err != nil {
		return nil, err
	}
	_ = os.Remove(o.LogDir) // an empty directory is replaced
	if err := os.Rename(work, o.LogDir); err != nil {
		return nil, err
	}
	renamed = true
	res.SeqFloor = max(res.Shipped, man.Reserved, res.Restored)
	res.Took = time.Since(start)
	log.Info("restored", "generation", man.Generation, "seq", res.Restored, "shipped", res.Shipped, "seq_floor", res.SeqFloor,
		"segments", res.Segments, "purged", res.Purged, "blobs", res.Blobs, "took", res.Took.Round(time.Millisecond))
	return res, nil
}

func restoreKeys(ctx context.Context, o RestoreOptions, man *Manifest, res *RestoreResult) ([]byte, error) {
	if man.Keys != nil {
		sealed, err := objstore.ReadAll(ctx, o.Target.Objects, man.Keys.Object, maxKeyFiles*maxKeyFileSize*4)
		if err != nil {
			return nil, fmt.Errorf("backup: keys: %w", err)
		}
		if len(o.Identities) == 0 {
			return nil, fmt.Errorf("%w: the keys are sealed (%s) and no passphrase or identity was given", ErrPassphrase, man.Keys.Method)
		}
		files, err := openKeys(sealed, o.Identities)
		if err != nil {
			return nil, err
		}
		if err := writeKeysDir(o.KeysDir, files); err != nil {
			return nil, err
		}
		res.KeysRestored = len(files)
	}
	key, err := os.ReadFile(filepath.Join(o.KeysDir, o.SealKeyName))
	if err != nil {
		return nil, fmt.Errorf("backup: the backup has no keys and %s has no %s: the log's secrets cannot be read", o.KeysDir, o.SealKeyName)
	}
	return key, nil
}

// download is one segment fetched and decoded ahead of the importer.
type download struct {
	ref  segRef
	seg  *Segment
	err  error
	took time.Duration
	done chan struct{}
}

func restoreSegments(parent context.Context, o RestoreOptions, man *Manifest, im *eventlog.Importer, blobs *blobRestorer, res *RestoreResult) error {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before the wait: it stops the lister and downloaders
	order := make(chan *download, o.Prefetch)
	work := make(chan *download, o.Prefetch)
	listErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		c := newChain(func(r segRef) error {
			d := &download{ref: r, done: make(chan struct{})}
			for _, ch := range []chan *download{order, work} {
				select {
				case ch <- d:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		err := listSegments(ctx, o.Target.Objects, man.Generation, c.add)
		if err == nil {
			err = c.done()
		}
		if err == nil {
			if n := len(c.stale); n > 0 && c.hole {
				o.Logger.Warn("restore: the backup has a hole; segments after it are ignored", "after_seq", c.head(), "ignored", n)
			}
		}
		listErr <- err
	}()
	for range o.Prefetch {
		wg.Go(func() {
			for d := range work {
				t0 := time.Now()
				b, err := objstore.ReadAll(ctx, o.Target.Objects, d.ref.Key, MaxSegmentRaw)
				if err == nil {
					d.seg, err = DecodeSegment(b)
				}
				if err == nil && (d.seg.Header.First != d.ref.First || d.seg.Header.Last != d.ref.Last) {
					err = fmt.Errorf("%w: %s holds seqs %d..%d", ErrCorrupt, d.ref.Key, d.seg.Header.First, d.seg.Header.Last)
				}
				if err != nil {
					err = fmt.Errorf("segment %s: %w", d.ref.Key, err)
				}
				d.err, d.took = err, time.Since(t0)
				close(d.done)
			}
		})
	}
	var checks *checker
	if o.Check != nil {
		checks = newChecker(ctx, o.Check)
		defer checks.wait() // after an error: let the workers finish
	}
	total := man.Head
	stopped := false
	for d := range order {
		if stopped {
			continue // drain: the lister and downloaders finish
		}
		w0 := time.Now()
		select {
		case <-d.done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		res.Wait += time.Since(w0)
		if d.err != nil {
			return d.err
		}
		res.Download += d.took
		res.Segments++
		res.SegmentBytes += d.ref.Size
		res.Shipped = d.ref.Last
		total = max(total, d.ref.Last)
		i0 := time.Now()
		for i, val := range d.seg.Values {
			seq := d.seg.Header.First + eventlog.Seq(i)
			if o.AtSeq > 0 && seq > o.AtSeq {
				res.StoppedBy, stopped = "seq", true
				break
			}
			if !o.AtTime.IsZero() && !eventlog.IsTombstone(val) {
				ev, err := eventlog.DecodeStored(val)
				if err != nil {
					return fmt.Errorf("seq %d: %w", seq, err)
				}
				if t := ev.Time.Time(); !t.IsZero() && t.After(o.AtTime) {
					res.StoppedBy, stopped = "time", true
					break
				}
			}
			ev, err := im.Add(seq, val)
			if err != nil {
				return err
			}
			res.Restored = seq
			if t := ev.Time.Time(); !t.IsZero() {
				res.LastEventTime = t
			}
			if checks != nil && ev.Kind != eventlog.KindTombstone {
				if err := checks.send(ev); err != nil {
					return err
				}
			}
			if ev.Kind == eventlog.KindAccount && ev.Account.Status == "deleted" {
				n, err := im.Purge(ev.DID, seq)
				if err != nil {
					return err
				}
				res.Purged += n
				blobs.deleteAccount(ev.DID)
			}
			if o.BlobEvents != nil && ev.Kind == eventlog.KindPrivate {
				up, del := o.BlobEvents(ev)
				for _, b := range up {
					blobs.copy(b)
				}
				for _, b := range del {
					blobs.remove(b)
				}
			}
			if o.Progress != nil {
				o.Progress(seq, total)
			}
		}
		res.Import += time.Since(i0)
		d.seg = nil
		if stopped {
			cancel() // nothing more is needed: stop listing and downloading
		}
	}
	if err := <-listErr; err != nil && !stopped {
		return err
	}
	if checks != nil {
		c0 := time.Now()
		if err := checks.wait(); err != nil {
			return err
		}
		res.CheckTime = time.Since(c0)
	}
	if stopped {
		// The backup's head is its last segment, whether or not restored.
		if err := listSegments(parent, o.Target.Objects, man.Generation, func(r segRef) error {
			res.Shipped = max(res.Shipped, r.Last)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// blobRestorer copies blobs from the backup to the destination on a few
// workers, each account's operations on one worker, in order.
type blobRestorer struct {
	o       RestoreOptions
	res     *RestoreResult
	queues  []chan blobOp
	wg      sync.WaitGroup
	err     atomic.Pointer[error]
	n, miss atomic.Int64
	bytes   atomic.Int64
}

type blobOp struct {
	kind byte // 'c' copy, 'd' delete, 'a' delete account
	ref  BlobRef
}

func newBlobRestorer(ctx context.Context, o RestoreOptions, res *RestoreResult) *blobRestorer {
	r := &blobRestorer{o: o, res: res}
	if o.BlobDest == nil || res.BlobLocation.Location != BlobsInBackup {
		return r
	}
	for range 4 {
		q := make(chan blobOp, 256)
		r.queues = append(r.queues, q)
		r.wg.Go(func() {
			for op := range q {
				if r.err.Load() != nil {
					continue
				}
				if err := r.do(ctx, op); err != nil {
					r.err.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	return r
}

func (r *blobRestorer) queue(did syntax.DID) chan blobOp {
	h := fnv.New32a()
	h.Write([]byte(did))
	return r.queues[int(h.Sum32())%len(r.queues)]
}

func (r *blobRestorer) send(op blobOp) {
	if len(r.queues) > 0 {
		r.queue(op.ref.DID) <- op
	}
}

func (r *blobRestorer) copy(b BlobRef)               { r.send(blobOp{'c', b}) }
func (r *blobRestorer) remove(b BlobRef)             { r.send(blobOp{'d', b}) }
func (r *blobRestorer) deleteAccount(did syntax.DID) { r.send(blobOp{'a', BlobRef{DID: did}}) }

func (r *blobRestorer) do(ctx context.Context, op blobOp) error {
	dst, src := r.o.BlobDest, r.o.Target.Blobs
	switch op.kind {
	case 'd':
		return dst.Delete(ctx, op.ref.DID, op.ref.CID)
	case 'a':
		return dst.DeleteAccount(ctx, op.ref.DID)
	}
	size, err := src.Stat(ctx, op.ref.DID, op.ref.CID)
	if errors.Is(err, blobstore.ErrNotFound) {
		r.miss.Add(1)
		return nil
	}
	if err != nil {
		return err
	}
	rc, err := src.Open(ctx, op.ref.DID, op.ref.CID, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := dst.Put(ctx, op.ref.DID, op.ref.CID, rc, size); err != nil {
		return err
	}
	r.n.Add(1)
	r.bytes.Add(size)
	return nil
}

func (r *blobRestorer) wait() error {
	for _, q := range r.queues {
		close(q)
	}
	r.wg.Wait()
	r.res.Blobs, r.res.BlobsMissing, r.res.BlobBytes = r.n.Load(), r.miss.Load(), r.bytes.Load()
	if p := r.err.Load(); p != nil {
		return fmt.Errorf("restore blobs: %w", *p)
	}
	return nil
}

// checker runs Check on a worker per CPU, each account's events on one
// worker in seq order (what commit verification needs: an account's
// signing key is an earlier event of that account). The first failure
// is kept and reported; the restore then fails as a whole.
type checker struct {
	check  func(context.Context, *eventlog.Event) error
	ctx    context.Context
	queues []chan *eventlog.Event
	wg     sync.WaitGroup
	err    atomic.Pointer[error]
	closed bool
}

func newChecker(ctx context.Context, check func(context.Context, *eventlog.Event) error) *checker {
	c := &checker{check: check, ctx: ctx}
	for range max(1, runtime.GOMAXPROCS(0)) {
		q := make(chan *eventlog.Event, 1024)
		c.queues = append(c.queues, q)
		c.wg.Go(func() {
			for ev := range q {
				if c.err.Load() != nil {
					continue
				}
				if err := check(ctx, ev); err != nil {
					var e error = &eventlog.VerifyError{Seq: ev.Seq, DID: ev.DID, Reason: err.Error()}
					c.err.CompareAndSwap(nil, &e)
				}
			}
		})
	}
	return c
}

func (c *checker) send(ev *eventlog.Event) error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	h := fnv.New32a()
	h.Write([]byte(ev.DID))
	select {
	case c.queues[int(h.Sum32())%len(c.queues)] <- ev:
		return nil
	case <-c.ctx.Done():
		return context.Cause(c.ctx)
	}
}

// wait closes the queues, waits for the workers and returns the first
// failure. Calling it again returns the same.
func (c *checker) wait() error {
	if !c.closed {
		c.closed = true
		for _, q := range c.queues {
			close(q)
		}
		c.wg.Wait()
	}
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}
