package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Default option values.
const (
	DefaultMaxBatchEvents = 4096
	DefaultMaxBatchBytes  = 64 << 20
	SealKeyFile           = "seal.key"
)

// Options configure a Log. A nil *Options means defaults.
type Options struct {
	// FS is the filesystem Pebble runs on; nil means the OS filesystem.
	// Tests pass vfs.NewCrashableMem() or an errorfs wrapper.
	FS vfs.FS
	// SealKey seals Secret private payloads. Nil means: read or create
	// SealKeyFile inside the log directory.
	SealKey []byte
	// MaxBatchEvents and MaxBatchBytes bound one group commit.
	MaxBatchEvents int
	MaxBatchBytes  int
	// SeqFloor, when greater than the last seq on disk, is filled with
	// tombstones at Open, so that after restoring an old copy of the log new
	// events never reuse a seq that was already handed out.
	SeqFloor Seq
	// Logger receives lifecycle messages; nil means slog.Default().
	Logger *slog.Logger
	// OnSync, if set, is called after each durable group commit with the
	// number of events it made durable and how long the sync took.
	OnSync func(events int, took time.Duration)
	// Now supplies event times; nil means time.Now.
	Now func() time.Time
	// MinFreeBytes is the free space kept in reserve on the log's
	// filesystem: appends that would leave less are refused with
	// ErrDiskFull (and accepted again once space is freed) instead of
	// failing the log. Zero means DefaultMinFreeBytes; negative disables the
	// check.
	MinFreeBytes int64
}

// EnsureDefaults fills unset fields and returns o (a new value if o is nil).
func (o *Options) EnsureDefaults() *Options {
	if o == nil {
		o = &Options{}
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.MaxBatchEvents <= 0 {
		o.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	return o
}

// Log is the append-only event log. It is safe for concurrent use.
type Log struct {
	db     *pebble.DB
	opts   Options
	sealer *sealer
	logger *slog.Logger
	space  spaceGuard

	// durable is the highest seq whose batch is synced; readers stop there.
	durable  atomic.Uint64
	notifyMu sync.Mutex
	notifyCh chan struct{} // closed and replaced whenever durable advances

	// failed holds the first write or sync error; once set nothing more is
	// acknowledged.
	failed atomic.Pointer[error]
	// failedCh is closed when failed is set (Failed).
	failedCh chan struct{}
	// purges counts completed purges (Purges).
	purges atomic.Uint64

	mu     sync.RWMutex // guards closed and sends on reqs
	closed bool
	reqs   chan *request
	done   chan struct{} // closed when committer and syncer have exited
	quit   chan struct{} // closed by Close, wakes waiters

	next Seq // next seq to assign; owned by the committer goroutine
}

// Open opens (creating if needed) the log in dir. On the OS filesystem the
// directory is made 0700 and every file in it 0600 (MakePrivate,
// PrivateFS).
func Open(dir string, opts *Options) (*Log, error) {
	o := *opts.EnsureDefaults()
	key := o.SealKey
	if key == nil {
		if o.FS != vfs.Default {
			return nil, errors.New("eventlog: Options.SealKey is required with a custom FS")
		}
		var err error
		if key, err = LoadOrCreateKey(filepath.Join(dir, SealKeyFile)); err != nil {
			return nil, err
		}
	}
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	// The log is private (0700, files 0600) whatever the umask and the
	// directory it is in.
	fs, err := StoreFS(dir, o.FS)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	db, err := pebble.Open(dir, TunedPebbleOptions(&pebble.Options{FS: fs, Logger: PebbleLogger(o.Logger)}))
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("open log: %w", err)
	}
	// Whatever Pebble recovered from its WAL may sit only in the OS page cache
	// (a killed process never synced it); flush it so that nothing a reader
	// can now see is lost by a later power cut, which could reuse its seq.
	if err := db.Flush(); err != nil {
		db.Close()
		return nil, fmt.Errorf("flush recovered log: %w", err)
	}
	l := &Log{
		db: db, opts: o, sealer: s, logger: o.Logger.With("component", "eventlog"),
		notifyCh: make(chan struct{}), failedCh: make(chan struct{}), reqs: make(chan *request, 1024),
		done: make(chan struct{}), quit: make(chan struct{}),
	}
	last, err := l.lastSeq()
	if err != nil {
		db.Close()
		return nil, err
	}
	if o.SeqFloor > last {
		if err := l.fillTo(last, o.SeqFloor); err != nil {
			db.Close()
			return nil, err
		}
		l.logger.Warn("seq floor above last event: filled with tombstones", "from", last+1, "seq", o.SeqFloor)
		last = o.SeqFloor
	}
	l.space = spaceGuard{fs: o.FS, dir: dir, reserve: uint64(max(o.MinFreeBytes, 0)), logf: l.logger.Warn}
	l.durable.Store(uint64(last))
	l.next = last + 1
	l.startPipeline()
	l.logger.Info("log open", "dir", dir, "seq", last)
	return l, nil
}

// lastSeq finds the highest seq on disk.
func (l *Log) lastSeq() (Seq, error) {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	seq, ok := seqOfEventKey(it.Key())
	if !ok {
		return 0, fmt.Errorf("%w: bad key %x", ErrCorrupt, it.Key())
	}
	return seq, nil
}

// fillTo writes tombstones for seqs (from, to].
func (l *Log) fillTo(from, to Seq) error {
	const maxFill = 50_000_000
	if to-from > maxFill {
		return fmt.Errorf("eventlog: seq floor %d is %d past the last event %d (max %d)", to, to-from, from, maxFill)
	}
	b := l.db.NewBatch()
	defer b.Close()
	for s := from + 1; s <= to; s++ {
		if err := b.Set(eventKey(s), []byte{formatTombstone}, nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

// Head returns the last durable seq (0 for an empty log).
func (l *Log) Head() Seq { return Seq(l.durable.Load()) }

// Wait blocks until the durable head is past after, and returns it.
func (l *Log) Wait(ctx context.Context, after Seq) (Seq, error) {
	for {
		l.notifyMu.Lock()
		ch := l.notifyCh
		l.notifyMu.Unlock()
		if d := l.Head(); d > after {
			return d, nil
		}
		if err := l.err(); err != nil {
			return l.Head(), err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return l.Head(), context.Cause(ctx)
		case <-l.quit:
			return l.Head(), ErrClosed
		}
	}
}

func (l *Log) publish(seq Seq) {
	l.durable.Store(uint64(seq))
	l.notifyMu.Lock()
	close(l.notifyCh)
	l.notifyCh = make(chan struct{})
	l.notifyMu.Unlock()
}

// err returns the sticky failure, if any.
func (l *Log) err() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *Log) fail(err error) {
	wrapped := fmt.Errorf("%w: %v", ErrFailed, err)
	if l.failed.CompareAndSwap(nil, &wrapped) {
		l.logger.Error("log write failed; refusing further appends until reopened", "err", err)
		close(l.failedCh)
		l.notifyMu.Lock()
		close(l.notifyCh)
		l.notifyCh = make(chan struct{})
		l.notifyMu.Unlock()
	}
}

// RepoHead returns the repo's latest durable commit or sync, or ErrNotFound.
// If the newest head is still syncing it waits for it rather than reveal a
// state a crash could take back.
func (l *Log) RepoHead(ctx context.Context, did syntax.DID) (RepoHead, error) {
	if l.isClosed() {
		return RepoHead{}, ErrClosed
	}
	val, closer, err := l.db.Get(headKey(did))
	if errors.Is(err, pebble.ErrNotFound) {
		return RepoHead{}, ErrNotFound
	}
	if err != nil {
		return RepoHead{}, err
	}
	h, err := decodeHead(val)
	closer.Close()
	if err != nil {
		return RepoHead{}, err
	}
	if h.Seq > l.Head() {
		if _, err := l.Wait(ctx, h.Seq-1); err != nil {
			return RepoHead{}, err
		}
	}
	return h, nil
}

func (l *Log) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

// Close waits for queued appends to finish and closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	close(l.reqs)
	close(l.quit)
	l.mu.Unlock()
	<-l.done
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("close log: %w", err)
	}
	l.logger.Info("log closed", "seq", l.Head())
	return nil
}

// Metrics exposes Pebble's metrics (for operators and the metrics endpoint).
func (l *Log) Metrics() *pebble.Metrics { return l.db.Metrics() }

// AsyncFlush starts writing the log's memtable to disk and returns a channel
// closed once it is written. Appends go on meanwhile into a new memtable. A
// bulk writer (an import) calls it every few MB so that the memtables it
// fills stay that small, not Pebble's tuned 32 MiB each.
func (l *Log) AsyncFlush() (<-chan struct{}, error) { return l.db.AsyncFlush() }

// PebbleLogger adapts a slog.Logger for Pebble: its routine chatter goes
// to debug, its errors to error. Fatalf logs and panics, as Pebble expects.
func PebbleLogger(l *slog.Logger) pebble.Logger { return pebbleLogger{l.With("component", "pebble")} }

type pebbleLogger struct{ l *slog.Logger }

func (q pebbleLogger) Infof(format string, args ...any)  { q.l.Debug(fmt.Sprintf(format, args...)) }
func (q pebbleLogger) Errorf(format string, args ...any) { q.l.Error(fmt.Sprintf(format, args...)) }
func (q pebbleLogger) Fatalf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}

// TunedPebbleOptions sets what pdslog's stores want from Pebble on opts and
// returns it, measured on this project's loads (createRecord under load,
// replay of the projections):
//   - the newest on-disk format (columnar blocks) and value separation:
//     values of a few hundred bytes and more (events, blocks) are written
//     once into blob files and compactions move only keys and handles
//     (under write load compactions took 29% of the server's CPU, 14% with
//     it; replaying the blocks projection without it is 1.6× slower);
//   - 32 MiB memtables and a larger L0 and base level, so that bursts of
//     random keys (blocks by CID) are compacted in fewer, larger steps;
//   - bloom filters, so that a point read of a missing key (most reads while
//     a projection applies new records) skips the levels that lack it.
func TunedPebbleOptions(opts *pebble.Options) *pebble.Options {
	opts.FormatMajorVersion = pebble.FormatNewest
	opts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{Enabled: true, MinimumSize: 256, MaxBlobReferenceDepth: 100,
			RewriteMinimumAge: 5 * time.Minute, TargetGarbageRatio: 0.2}
	}
	opts.MemTableSize = 32 << 20
	opts.L0CompactionThreshold = 8
	opts.LBaseMaxBytes = 256 << 20
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return opts
}
