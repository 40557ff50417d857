package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/backup/objstore"
	"github.com/pdslog/pdslog/eventlog/blobstore"
)

// Defaults of Options.
const (
	DefaultRPO           = time.Second
	DefaultSegmentBytes  = 8 << 20
	DefaultUploads       = 4
	DefaultSeqReserve    = 100_000
	DefaultManifestEvery = 10 * time.Second
	DefaultCompactEvery  = time.Hour
	DefaultFlushTimeout  = 10 * time.Second
)

// BlobRef names one account's blob.
type BlobRef struct {
	DID syntax.DID
	CID cid.Cid
}

// BlobEvents tells which blobs an event records as uploaded and as
// deleted (BlobsOfEvent, the default, reads eventlog/events' blob types).
type BlobEvents func(ev *eventlog.Event) (uploaded, deleted []BlobRef)

// Options configure a Shipper.
type Options struct {
	Log    *eventlog.Log // required
	Target *Target       // required
	// StatePath is the file where the data dir records the generation it
	// ships into (beside the log, never shipped or restored). Required.
	StatePath string
	// KeysDir is the data dir's keys/ directory, shipped sealed to
	// KeysRecipients ("passphrase" or "recipient" as KeysMethod). With no
	// recipient the keys are not backed up (and a warning says so).
	KeysDir        string
	KeysRecipients []age.Recipient
	KeysMethod     string
	// LocalBlobs holds the blob bytes to ship (blobs on disk); nil when
	// they are not shipped. ExternalBlobs, when set, records that blobs
	// already live in S3/R2 (nothing is copied).
	LocalBlobs    blobstore.Store
	ExternalBlobs *BlobsInfo
	BlobEvents    BlobEvents
	// RPO bounds how long a durable event waits to be shipped: a segment
	// is cut RPO/2 after its first event was appended (or at SegmentBytes
	// of records), leaving the other half for its upload. Default 1s.
	RPO          time.Duration
	SegmentBytes int
	// Uploads is how many segments are uploaded at once (pipelined; the
	// shipped head only moves in seq order). Default 4.
	Uploads int
	// LagWarn: a warning is logged while the oldest unshipped event is
	// older than this. Default 10×RPO, at least 10s.
	LagWarn time.Duration
	// SeqReserve is how far ahead of the log's head Manifest.Reserved is
	// kept. Default 100000.
	SeqReserve    uint64
	ManifestEvery time.Duration
	// CompactEvery is how often Run applies shipped purges to the backup
	// (rewriting the segments that hold a deleted account's events, and
	// deleting its blobs): the window within which deleted data leaves
	// the backup. Default 1h.
	CompactEvery time.Duration
	// FlushTimeout is how long, once the context ends, the shipper goes
	// on uploading what it has already read. Default 10s.
	FlushTimeout time.Duration
	Host         string
	Logger       *slog.Logger
	Now          func() time.Time
}

// Shipper ships a log to a backup target. Run follows the log; CatchUp
// ships up to a seq and returns.
type Shipper struct {
	o   Options
	log *slog.Logger
	m   *metrics

	mu         sync.Mutex
	gen        string
	man        Manifest
	shipped    eventlog.Seq
	lastUpload time.Time
	queue      []*job // cut, not yet acknowledged, in seq order
	openFirst  int64  // append time (unix ms) of the open segment's first event; 0: none
	behind     time.Time
	manWritten time.Time
	manHead    eventlog.Seq
	dirty      bool
	warned     time.Time
	keysCheck  time.Time
	reserveLow bool

	manMu sync.Mutex // one manifest write at a time
	lags  reservoir
	stats struct {
		events, segments, segmentBytes, manifestBytes, manifests, blobs, blobBytes, blobsMissing, errors atomic.Int64
	}
}

// New returns a shipper; it sends nothing until Run or CatchUp.
func New(o Options) (*Shipper, error) {
	if o.Log == nil || o.Target == nil || o.StatePath == "" {
		return nil, errors.New("backup: Options.Log, Target and StatePath are required")
	}
	if o.RPO <= 0 {
		o.RPO = DefaultRPO
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.Uploads <= 0 {
		o.Uploads = DefaultUploads
	}
	if o.LagWarn <= 0 {
		o.LagWarn = max(10*o.RPO, 10*time.Second)
	}
	if o.SeqReserve == 0 {
		o.SeqReserve = DefaultSeqReserve
	}
	if o.ManifestEvery <= 0 {
		o.ManifestEvery = DefaultManifestEvery
	}
	if o.CompactEvery <= 0 {
		o.CompactEvery = DefaultCompactEvery
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BlobEvents == nil {
		o.BlobEvents = BlobsOfEvent
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	return &Shipper{o: o, log: o.Logger.With("component", "backup"), m: newMetrics()}, nil
}

// Generation returns the generation being shipped into ("" before start).
func (s *Shipper) Generation() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// Run ships the log until ctx ends, following new events; failures are
// logged and retried with backoff. Every CompactEvery it applies shipped
// purges (Compact). It returns nil once ctx ends, after a last flush.
func (s *Shipper) Run(ctx context.Context) error {
	compactCtx, stopCompact := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopCompact()
	wg.Go(func() {
		t := time.NewTicker(s.o.CompactEvery)
		defer t.Stop()
		for {
			select {
			case <-compactCtx.Done():
				return
			case <-t.C:
				if s.Generation() == "" {
					continue
				}
				if err := s.Compact(compactCtx); err != nil && compactCtx.Err() == nil {
					s.log.Warn("backup compaction failed; retried next interval", "err", err)
				}
			}
		}
	})
	defer s.logStats("backup stopped")
	for attempt := 0; ; attempt++ {
		err := s.run(ctx, 0)
		if ctx.Err() != nil {
			return nil
		}
		s.stats.errors.Add(1)
		s.m.errors.Inc()
		d := backoff(attempt)
		s.log.Error("backup shipping failed; retrying", "err", err, "retry_in", d, "seq", s.Lag().Shipped)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// CatchUp ships every event up to seq until (the log's head when 0),
// then applies pending purges (Compact), and returns. Failures are retried
// with backoff until ctx ends.
func (s *Shipper) CatchUp(ctx context.Context, until eventlog.Seq) error {
	if until == 0 {
		until = s.o.Log.Head()
	}
	for attempt := 0; ; attempt++ {
		err := s.run(ctx, until)
		if err == nil && s.Lag().Shipped >= until {
			break
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err == nil {
			err = fmt.Errorf("backup: shipped through %d of %d", s.Lag().Shipped, until)
		}
		d := backoff(attempt)
		s.log.Error("backup shipping failed; retrying", "err", err, "retry_in", d)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(d):
		}
	}
	return s.Compact(ctx)
}

func backoff(attempt int) time.Duration {
	d := 200 * time.Millisecond << min(attempt, 8)
	d = min(d, 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

// retry calls fn until it succeeds or ctx ends, with backoff.
func (s *Shipper) retry(ctx context.Context, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		s.stats.errors.Add(1)
		s.m.errors.Inc()
		d := backoff(attempt)
		lvl := slog.LevelWarn
		if attempt == 0 {
			lvl = slog.LevelInfo
		}
		s.log.Log(ctx, lvl, "backup upload failed; retrying", "what", what, "attempt", attempt+1, "retry_in", d, "err", err)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(d):
		}
	}
}

// job is one cut segment on its way to the backup.
type job struct {
	first, last eventlog.Seq
	data        []byte
	times       []int64 // append time (unix ms) of each event; 0 for a tombstone
	lastTime    int64
	blobs       []BlobRef
	purges      []Purge
	done        chan struct{}
	err         error
}

// state is what the data dir records about its backup.
type state struct {
	URL        string `json:"url"`
	Generation string `json:"generation"`
}

func readState(path string) state {
	var st state
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func writeState(path string, st state) error {
	b, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if f, err := os.Open(tmp); err == nil {
		_ = f.Sync()
		f.Close()
	}
	return os.Rename(tmp, path)
}

// run starts (or resumes) the generation and ships until ctx ends, or
// through until when it is not 0.
func (s *Shipper) run(ctx context.Context, until eventlog.Seq) error {
	head, err := s.start(ctx)
	if err != nil {
		return err
	}
	// Uploads go on FlushTimeout past ctx's end, so what was read is shipped.
	uctx, cancelU := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelU()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(s.o.FlushTimeout, cancelU) })
	defer stop()

	jobs := make(chan *job, s.o.Uploads)
	order := make(chan *job, 2*s.o.Uploads)
	var wg sync.WaitGroup
	for range s.o.Uploads {
		wg.Go(func() {
			for j := range jobs {
				j.err = s.upload(uctx, j)
				close(j.done)
			}
		})
	}
	ackDone := make(chan error, 1)
	go func() { ackDone <- s.ack(uctx, order) }()
	rerr := s.read(ctx, uctx, head, until, jobs, order)
	wg.Wait()
	aerr := <-ackDone
	if werr := s.writeManifest(uctx, true); werr != nil && aerr == nil && rerr == nil {
		aerr = werr
	}
	if rerr != nil && ctx.Err() == nil {
		return rerr
	}
	if aerr != nil && uctx.Err() == nil {
		return aerr
	}
	if ctx.Err() == nil && uctx.Err() != nil {
		return uctx.Err()
	}
	return nil
}

// start picks the generation: the one the data dir recorded if the
// backup still has it and is not ahead of the log, else a new one. It
// removes stale segments, ships the keys, writes the manifest (with the
// seq reservation) and records the generation. It returns the last seq
// the backup holds.
func (s *Shipper) start(ctx context.Context) (eventlog.Seq, error) {
	obj := s.o.Target.Objects
	st := readState(s.o.StatePath)
	var man *Manifest
	gen := ""
	if st.URL == s.o.Target.URL && ValidGeneration(st.Generation) {
		m, err := readManifest(ctx, obj, st.Generation)
		switch {
		case err == nil:
			gen, man = st.Generation, m
		case errors.Is(err, objstore.ErrNotExist):
			s.log.Warn("backup: the generation this data dir shipped into is gone from the backup; starting a new one", "generation", st.Generation)
		default:
			return 0, err
		}
	}
	var head eventlog.Seq
	if gen != "" {
		c := newChain(nil)
		if err := listSegments(ctx, obj, gen, c.add); err != nil {
			return 0, err
		}
		if err := c.done(); err != nil {
			return 0, err
		}
		head = c.head()
		if head > s.o.Log.Head() {
			s.log.Warn("backup: the backup is ahead of this log (not the data dir that shipped it?); starting a new generation",
				"generation", gen, "remote_seq", head, "seq", s.o.Log.Head())
			gen, head = "", 0
		} else {
			for _, r := range c.stale {
				if err := obj.Delete(ctx, r.Key); err != nil {
					return 0, err
				}
				s.log.Info("backup: removed a stale segment", "key", r.Key)
			}
		}
	}
	now := s.o.Now().UTC()
	if gen == "" {
		gen = newGeneration(now)
		man = &Manifest{Version: 1, Generation: gen, Created: now}
		// Purges not yet applied to older generations carry over.
		olds, err := listGenerations(ctx, obj)
		if err != nil {
			return 0, err
		}
		for _, g := range olds {
			m, err := readManifest(ctx, obj, g)
			if err != nil {
				continue
			}
			man.Purges = mergePurges(man.Purges, m.Purges)
		}
		s.log.Info("backup: new generation", "generation", gen, "url", s.o.Target.URL)
	} else {
		s.log.Info("backup: resuming", "generation", gen, "seq", head, "url", s.o.Target.URL)
	}
	man.Host = s.o.Host
	man.Blobs = BlobsInfo{Location: BlobsNotShipped}
	switch {
	case s.o.ExternalBlobs != nil:
		man.Blobs = *s.o.ExternalBlobs
		man.Blobs.Location = BlobsExternal
	case s.o.LocalBlobs != nil:
		man.Blobs.Location = BlobsInBackup
	}
	s.mu.Lock()
	s.gen, s.man, s.shipped = gen, *man, head
	s.man.Head = head
	s.queue, s.openFirst, s.behind = nil, 0, time.Time{}
	s.mu.Unlock()
	if err := s.shipKeys(ctx); err != nil {
		return 0, err
	}
	s.bumpReservation()
	if err := s.writeManifest(ctx, true); err != nil {
		return 0, err
	}
	if err := writeState(s.o.StatePath, state{URL: s.o.Target.URL, Generation: gen}); err != nil {
		return 0, fmt.Errorf("backup: record generation: %w", err)
	}
	return head, nil
}

func mergePurges(a, b []Purge) []Purge {
	for _, p := range b {
		dup := false
		for _, q := range a {
			if q.DID == p.DID && q.Before == p.Before {
				dup = true
				break
			}
		}
		if !dup {
			a = append(a, p)
		}
	}
	return a
}

// shipKeys uploads the keys bundle when it changed since the manifest's.
func (s *Shipper) shipKeys(ctx context.Context) error {
	s.mu.Lock()
	s.keysCheck = s.o.Now()
	gen, cur := s.gen, s.man.Keys
	s.mu.Unlock()
	if len(s.o.KeysRecipients) == 0 {
		if cur == nil {
			s.log.Warn("backup: no PDSLOG_BACKUP_PASSPHRASE or recipient: keys/ is not backed up, and a restore cannot read the log's secrets")
		}
		return nil
	}
	files, err := readKeysDir(s.o.KeysDir)
	if err != nil {
		return err
	}
	bundle, digest := encodeKeyBundle(files)
	if cur != nil && cur.Digest == digest {
		return nil
	}
	sealed, err := sealKeys(bundle, s.o.KeysRecipients)
	if err != nil {
		return err
	}
	key := keysKey(gen)
	if err := s.o.Target.Objects.Put(ctx, key, bytes.NewReader(sealed), int64(len(sealed))); err != nil {
		return err
	}
	s.mu.Lock()
	s.man.Keys = &KeysInfo{Object: key, Method: s.o.KeysMethod, Digest: digest, Time: s.o.Now().UTC()}
	s.dirty = true
	s.mu.Unlock()
	s.log.Info("backup: keys shipped (encrypted)", "files", len(files), "method", s.o.KeysMethod)
	return nil
}

// bumpReservation moves Manifest.Reserved ahead of the log's head when
// the head has come within half a reserve of it; it reports whether the
// manifest must be written.
func (s *Shipper) bumpReservation() bool {
	head := s.o.Log.Head()
	s.mu.Lock()
	defer s.mu.Unlock()
	if uint64(head)+s.o.SeqReserve/2 < uint64(s.man.Reserved) {
		return false
	}
	if head >= s.man.Reserved && s.man.Reserved > 0 && !s.reserveLow {
		s.reserveLow = true
		s.log.Warn("backup: the log's head passed the seq reservation recorded in the backup; a restore now may reuse seqs relays saw",
			"seq", head, "reserved", s.man.Reserved)
	}
	s.man.Reserved = head + eventlog.Seq(s.o.SeqReserve)
	s.dirty = true
	return true
}

// writeManifest writes the manifest when forced, when something changed
// that must be recorded, or every ManifestEvery while shipping moves.
func (s *Shipper) writeManifest(ctx context.Context, force bool) error {
	s.manMu.Lock()
	defer s.manMu.Unlock()
	s.mu.Lock()
	now := s.o.Now().UTC()
	if !force && !s.dirty && (s.manHead == s.man.Head || now.Sub(s.manWritten) < s.o.ManifestEvery) {
		s.mu.Unlock()
		return nil
	}
	s.man.Updated = now
	m := s.man
	m.Purges = append([]Purge(nil), s.man.Purges...)
	s.dirty = false
	s.mu.Unlock()
	b, err := EncodeManifest(&m)
	if err != nil {
		return err
	}
	if err := s.o.Target.Objects.Put(ctx, manifestKey(m.Generation), bytes.NewReader(b), int64(len(b))); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	s.stats.manifests.Add(1)
	s.stats.manifestBytes.Add(int64(len(b)))
	s.m.manifests.Inc()
	s.mu.Lock()
	s.manWritten, s.manHead = now, m.Head
	s.mu.Unlock()
	return nil
}

func readManifest(ctx context.Context, obj objstore.Store, gen string) (*Manifest, error) {
	b, err := objstore.ReadAll(ctx, obj, manifestKey(gen), maxManifest)
	if err != nil {
		return nil, err
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, err
	}
	if m.Generation != gen {
		return nil, fmt.Errorf("%w: manifest of %s names generation %s", ErrCorrupt, gen, m.Generation)
	}
	return m, nil
}

// listGenerations returns the backup's generations, oldest first.
func listGenerations(ctx context.Context, obj objstore.Store) ([]string, error) {
	var out []string
	err := obj.List(ctx, manifestDir, "", func(o objstore.Object) error {
		name, ok := cutSuffix(o.Key[len(manifestDir):], ".json")
		if ok && ValidGeneration(name) {
			out = append(out, name)
		}
		return nil
	})
	return out, err
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) < len(suffix) || s[len(s)-len(suffix):] != suffix {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}

// listSegments calls fn for each segment of gen, in key order.
func listSegments(ctx context.Context, obj objstore.Store, gen string, fn func(segRef) error) error {
	return obj.List(ctx, segmentPrefix(gen), "", func(o objstore.Object) error {
		r, ok := parseSegmentKey(gen, o.Key)
		if !ok {
			return nil
		}
		r.Size, r.Modified = o.Size, o.Modified
		return fn(r)
	})
}

// read follows the log from after, cutting segments and handing them to
// the uploaders (jobs) and the acknowledger (order), in seq order. Once
// ctx ends it cuts what it holds and returns; sends use uctx, which
// outlives ctx by the flush timeout.
func (s *Shipper) read(ctx, uctx context.Context, after, until eventlog.Seq, jobs, order chan<- *job) error {
	defer close(jobs)
	defer close(order)
	linger := s.o.RPO / 2
	l := s.o.Log
	b := newSegmentBuilder(after + 1)
	var (
		times    []int64
		blobs    []BlobRef
		purges   []Purge
		lastTime int64
	)
	cut := func() error {
		if b.empty() {
			return nil
		}
		data, h := b.encode()
		j := &job{first: h.First, last: h.Last, data: data, times: times, lastTime: lastTime, blobs: blobs, purges: purges, done: make(chan struct{})}
		s.mu.Lock()
		s.queue = append(s.queue, j)
		s.openFirst = 0
		s.mu.Unlock()
		b = newSegmentBuilder(h.Last + 1)
		times, blobs, purges = nil, nil, nil
		for _, ch := range []chan<- *job{order, jobs} {
			select {
			case ch <- j:
			case <-uctx.Done():
				return context.Cause(uctx)
			}
		}
		return nil
	}
	firstAt := time.Time{} // when the open segment's first event was appended
	for {
		if ctx.Err() != nil {
			return cut()
		}
		if until > 0 && b.last >= until {
			return cut()
		}
		if head := l.Head(); head > b.last {
			it, err := l.IterRaw(ctx, b.last)
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				return err
			}
			full := false
			for !full && it.Next() {
				seq, val := it.Seq(), it.Value()
				ev, err := eventlog.DecodeStored(val)
				if err != nil {
					it.Close()
					return fmt.Errorf("backup: seq %d: %w", seq, err)
				}
				var t int64
				if !ev.Time.Time().IsZero() {
					t = ev.Time.Time().UnixMilli()
					lastTime = t
				}
				if b.empty() {
					firstAt = time.Now()
					if t > 0 {
						firstAt = time.UnixMilli(t)
					}
					s.mu.Lock()
					s.openFirst = firstAt.UnixMilli()
					s.mu.Unlock()
				}
				b.add(seq, val, string(ev.DID), t)
				times = append(times, t)
				if ev.Kind == eventlog.KindAccount && ev.Account.Status == "deleted" {
					purges = append(purges, Purge{DID: string(ev.DID), Before: seq, Seen: s.o.Now().UTC()})
				}
				if s.o.LocalBlobs != nil && s.o.ExternalBlobs == nil && s.o.BlobEvents != nil && ev.Kind == eventlog.KindPrivate {
					up, _ := s.o.BlobEvents(ev)
					blobs = append(blobs, up...)
				}
				full = b.raw.Len() >= s.o.SegmentBytes || b.events() >= MaxSegmentEvents/2 || (until > 0 && seq >= until)
			}
			if err := it.Close(); err != nil && ctx.Err() == nil {
				return err
			}
			if full {
				if err := cut(); err != nil {
					return err
				}
				continue
			}
		}
		wait := time.Duration(-1)
		if !b.empty() {
			wait = linger - time.Since(firstAt)
			if wait <= 0 {
				if err := cut(); err != nil {
					return err
				}
				continue
			}
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if wait > 0 {
			wctx, cancel = context.WithTimeout(ctx, wait)
		}
		_, err := l.Wait(wctx, b.last)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
}

// upload ships one segment: its blobs first, then the segment object.
func (s *Shipper) upload(ctx context.Context, j *job) error {
	for _, br := range j.blobs {
		if err := s.retry(ctx, "blob", func() error { return s.shipBlob(ctx, br) }); err != nil {
			return err
		}
	}
	key := segmentKey(s.Generation(), j.first, j.last, 0)
	return s.retry(ctx, "segment", func() error {
		return s.o.Target.Objects.Put(ctx, key, bytes.NewReader(j.data), int64(len(j.data)))
	})
}

// shipBlob copies one blob to the backup unless it is there already (a
// blob the server has since deleted is skipped).
func (s *Shipper) shipBlob(ctx context.Context, br BlobRef) error {
	if _, err := s.o.Target.Blobs.Stat(ctx, br.DID, br.CID); err == nil {
		return nil
	} else if !errors.Is(err, blobstore.ErrNotFound) {
		return err
	}
	size, err := s.o.LocalBlobs.Stat(ctx, br.DID, br.CID)
	if errors.Is(err, blobstore.ErrNotFound) {
		s.stats.blobsMissing.Add(1)
		s.log.Debug("backup: blob gone before it was shipped", "did", br.DID, "cid", br.CID)
		return nil
	}
	if err != nil {
		return err
	}
	rc, err := s.o.LocalBlobs.Open(ctx, br.DID, br.CID, 0, -1)
	if errors.Is(err, blobstore.ErrNotFound) {
		s.stats.blobsMissing.Add(1)
		return nil
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := s.o.Target.Blobs.Put(ctx, br.DID, br.CID, rc, size); err != nil {
		return err
	}
	s.stats.blobs.Add(1)
	s.stats.blobBytes.Add(size)
	s.m.blobs.Inc()
	s.m.blobBytes.Add(float64(size))
	return nil
}

// ack waits for each segment's upload in seq order, moves the shipped
// head, records purges, and writes the manifest when due.
func (s *Shipper) ack(ctx context.Context, order <-chan *job) error {
	tick := time.NewTicker(min(s.o.RPO, time.Second))
	defer tick.Stop()
	var cur *job // the oldest segment not yet acknowledged
	for {
		var orderCh <-chan *job
		var doneCh <-chan struct{}
		if cur == nil {
			orderCh = order
		} else {
			doneCh = cur.done
		}
		select {
		case j, ok := <-orderCh:
			if !ok {
				return nil
			}
			cur = j
		case <-doneCh:
			if cur.err != nil {
				return cur.err
			}
			s.acked(cur)
			cur = nil
			s.housekeeping(ctx)
		case <-tick.C:
			s.housekeeping(ctx)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (s *Shipper) acked(j *job) {
	now := s.o.Now()
	for _, t := range j.times {
		if t > 0 {
			d := max(now.Sub(time.UnixMilli(t)), 0)
			s.m.shipLag.Observe(d.Seconds())
			s.lags.add(d)
		}
	}
	n := int64(j.last - j.first + 1)
	s.stats.events.Add(n)
	s.stats.segments.Add(1)
	s.stats.segmentBytes.Add(int64(len(j.data)))
	s.m.events.Add(float64(n))
	s.m.segments.Inc()
	s.m.segmentBytes.Add(float64(len(j.data)))
	s.mu.Lock()
	s.shipped = j.last
	s.lastUpload = now
	s.man.Head, s.man.LastUpload = j.last, now.UTC()
	if j.lastTime > 0 {
		s.man.HeadTime = time.UnixMilli(j.lastTime).UTC()
	}
	if len(j.purges) > 0 {
		s.man.Purges = mergePurges(s.man.Purges, j.purges)
		s.dirty = true
	}
	if len(s.queue) > 0 && s.queue[0] == j {
		s.queue = s.queue[1:]
	}
	s.mu.Unlock()
	s.log.Debug("backup: shipped", "seq", j.last, "events", n, "bytes", len(j.data))
}

// housekeeping runs after each acknowledgement and on every tick: the
// seq reservation, the manifest, changed keys, and the lag warning.
func (s *Shipper) housekeeping(ctx context.Context) {
	s.bumpReservation()
	s.mu.Lock()
	keysDue := s.o.Now().Sub(s.keysCheck) >= time.Minute
	s.mu.Unlock()
	if keysDue {
		if err := s.shipKeys(ctx); err != nil {
			s.log.Warn("backup: shipping keys failed; retried in a minute", "err", err)
		}
	}
	if err := s.writeManifest(ctx, false); err != nil && ctx.Err() == nil {
		s.stats.errors.Add(1)
		s.m.errors.Inc()
		s.log.Warn("backup: manifest write failed; retried", "err", err)
	}
	lag := s.Lag()
	s.mu.Lock()
	defer s.mu.Unlock()
	if lag.Age > s.o.LagWarn && s.o.Now().Sub(s.warned) >= 30*time.Second {
		s.warned = s.o.Now()
		s.log.Warn("backup lagging", "lag_events", lag.Events, "lag_seconds", lag.Age.Seconds(), "seq", lag.Shipped,
			"threshold", s.o.LagWarn)
	}
}

// Lag is how far shipping is behind the log.
type Lag struct {
	Shipped    eventlog.Seq  // last seq shipped
	Head       eventlog.Seq  // the log's durable head
	Events     uint64        // Head - Shipped
	Age        time.Duration // age of the oldest unshipped event; 0 when caught up
	LastUpload time.Time
}

// Lag returns the shipping lag now.
func (s *Shipper) Lag() Lag {
	head := s.o.Log.Head()
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l := Lag{Shipped: s.shipped, Head: head, LastUpload: s.lastUpload}
	if head <= s.shipped {
		s.behind = time.Time{}
		return l
	}
	l.Events = uint64(head - s.shipped)
	if s.behind.IsZero() {
		s.behind = now
	}
	oldest := s.behind
	switch {
	case len(s.queue) > 0 && len(s.queue[0].times) > 0 && s.queue[0].times[0] > 0:
		oldest = time.UnixMilli(s.queue[0].times[0])
	case len(s.queue) == 0 && s.openFirst > 0:
		oldest = time.UnixMilli(s.openFirst)
	}
	l.Age = max(now.Sub(oldest), 0)
	return l
}

// logStats logs the counters and lag percentiles.
func (s *Shipper) logStats(msg string) {
	st := s.Stats()
	perEvent := 0.0
	if st.Events > 0 {
		perEvent = float64(st.SegmentBytes+st.ManifestBytes) / float64(st.Events)
	}
	s.log.Info(msg, "seq", s.Lag().Shipped, "events", st.Events, "segments", st.Segments, "segment_bytes", st.SegmentBytes,
		"manifest_writes", st.ManifestWrites, "manifest_bytes", st.ManifestBytes, "bytes_per_event", perEvent,
		"blobs", st.Blobs, "blob_bytes", st.BlobBytes, "errors", st.Errors,
		"lag_p50_seconds", st.LagP50.Seconds(), "lag_p99_seconds", st.LagP99.Seconds())
}

// Stats are counters since the shipper was made.
type Stats struct {
	Events, Segments, SegmentBytes, ManifestWrites, ManifestBytes int64
	Blobs, BlobBytes, BlobsMissing, Errors                        int64
	// LagP50 and LagP99 are percentiles of the per-event shipping lag
	// (append to upload acknowledged), over a uniform sample.
	LagP50, LagP99 time.Duration
}

// Stats returns the counters.
func (s *Shipper) Stats() Stats {
	return Stats{
		Events: s.stats.events.Load(), Segments: s.stats.segments.Load(), SegmentBytes: s.stats.segmentBytes.Load(),
		ManifestWrites: s.stats.manifests.Load(), ManifestBytes: s.stats.manifestBytes.Load(),
		Blobs: s.stats.blobs.Load(), BlobBytes: s.stats.blobBytes.Load(), BlobsMissing: s.stats.blobsMissing.Load(),
		Errors: s.stats.errors.Load(), LagP50: s.lags.quantile(0.5), LagP99: s.lags.quantile(0.99),
	}
}
