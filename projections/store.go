package projections

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pdslog/pdslog/eventlog"
)

// ErrLocked is returned by OpenStore when another process holds the store.
var ErrLocked = errors.New("projections: store is in use by another process")

// StoreOptions configure a Store; nil means defaults.
type StoreOptions struct {
	FS     vfs.FS // nil means the OS filesystem
	Logger *slog.Logger
	// CacheSize is Pebble's block cache in bytes; 0 means DefaultCacheSize.
	CacheSize int64
}

// DefaultCacheSize is the projection store's block cache: reads of repo
// trees and records (getRepo, writes loading their MST path) are point
// lookups spread over the whole store, which Pebble's 8 MiB default
// serves mostly from disk.
const DefaultCacheSize = 32 << 20

// Store is the Pebble database that local projections keep their state in,
// one key space per projection:
//
//	name 0x00 0x00      -> cursor (8 bytes big-endian)
//	name 0x00 0x01 key  -> the projection's own key/value pairs
//
// Writes are not synced: a projection lost in a crash loses its effects and
// its cursor together and catches up from the log.
type Store struct {
	db *pebble.DB
}

// OpenStore opens (creating if needed) the projection store in dir; on
// the OS filesystem it is private (0700, files 0600), as the log.
func OpenStore(dir string, opts *StoreOptions) (*Store, error) {
	if opts == nil {
		opts = &StoreOptions{}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	size := opts.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	cache := pebble.NewCache(size)
	defer cache.Unref() // the DB holds its own reference
	// Projections hold emails and password hashes: private (0700, files
	// 0600) whatever the umask and the directory they are in.
	fs, err := eventlog.StoreFS(dir, opts.FS)
	if err != nil {
		return nil, fmt.Errorf("open projection store: %w", err)
	}
	db, err := pebble.Open(dir, eventlog.TunedPebbleOptions(&pebble.Options{FS: fs, Logger: eventlog.PebbleLogger(logger), Cache: cache}))
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("open projection store: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Space returns the key space of the named projection.
func (s *Store) Space(name string) *Space {
	if name == "" || strings.ContainsRune(name, 0) {
		panic(fmt.Sprintf("projections: bad space name %q", name))
	}
	return &Space{db: s.db, prefix: append([]byte(name), 0)}
}

// Space is one projection's part of the Store.
type Space struct {
	db     *pebble.DB
	prefix []byte
}

func (sp *Space) cursorKey() []byte { return append(append([]byte{}, sp.prefix...), 0) }

func (sp *Space) dataKey(k []byte) []byte {
	out := make([]byte, 0, len(sp.prefix)+1+len(k))
	out = append(out, sp.prefix...)
	out = append(out, 1)
	return append(out, k...)
}

func (sp *Space) dataBounds() (lo, hi []byte) {
	lo = append(append([]byte{}, sp.prefix...), 1)
	hi = append(append([]byte{}, sp.prefix...), 2)
	return lo, hi
}

// Cursor returns the last applied seq (0 if none).
func (sp *Space) Cursor(ctx context.Context) (eventlog.Seq, error) {
	v, closer, err := sp.db.Get(sp.cursorKey())
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("projections: bad cursor value %x", v)
	}
	return eventlog.Seq(binary.BigEndian.Uint64(v)), nil
}

// Reset deletes everything in the space, cursor included.
func (sp *Space) Reset(ctx context.Context) error {
	hi := append(append([]byte{}, sp.prefix[:len(sp.prefix)-1]...), 1)
	return sp.db.DeleteRange(sp.prefix, hi, pebble.Sync)
}

// Get reads a committed value; ok is false when the key is absent.
func (sp *Space) Get(key []byte) (val []byte, ok bool, err error) {
	v, closer, err := sp.db.Get(sp.dataKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return append([]byte{}, v...), true, nil
}

// Scan calls fn for every committed key with the given prefix, in order
// (reverse order when reverse is set), starting at start (inclusive; for
// reverse, strictly before start) when start is not nil. fn's slices are
// valid only during the call; returning io.EOF stops the scan without error.
func (sp *Space) Scan(ctx context.Context, prefix, start []byte, reverse bool, fn func(key, val []byte) error) error {
	return scan(ctx, sp.db, sp, prefix, start, reverse, fn)
}

type iterSource interface {
	NewIterWithContext(ctx context.Context, o *pebble.IterOptions) (*pebble.Iterator, error)
}

func scan(ctx context.Context, r iterSource, sp *Space, prefix, start []byte, reverse bool, fn func(key, val []byte) error) error {
	lo := sp.dataKey(prefix)
	hi := prefixEnd(lo)
	it, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	var ok bool
	switch {
	case reverse && start != nil:
		ok = it.SeekLT(sp.dataKey(start))
	case reverse:
		ok = it.Last()
	case start != nil:
		ok = it.SeekGE(sp.dataKey(start))
	default:
		ok = it.First()
	}
	skip := len(sp.prefix) + 1
	for ; ok; ok = step(it, reverse) {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := fn(it.Key()[skip:], v); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return it.Error()
}

func step(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte{}, p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Dump writes every key/value of the space (not the cursor) to w, one
// "hex(key) hex(value)" line each: the state digest the conformance suite
// compares.
func (sp *Space) Dump(ctx context.Context, w io.Writer) error {
	return sp.Scan(ctx, nil, nil, false, func(k, v []byte) error {
		_, err := fmt.Fprintf(w, "%x %x\n", k, v)
		return err
	})
}

// Writer is an open batch on a Space: reads see the batch's own writes.
type Writer struct {
	sp *Space
	b  *pebble.Batch
}

// Get reads through the batch; ok is false when the key is absent.
func (w *Writer) Get(key []byte) (val []byte, ok bool, err error) {
	v, closer, err := w.b.Get(w.sp.dataKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return append([]byte{}, v...), true, nil
}

// Set writes key = val.
func (w *Writer) Set(key, val []byte) error { return w.b.Set(w.sp.dataKey(key), val, nil) }

// Delete removes key.
func (w *Writer) Delete(key []byte) error { return w.b.Delete(w.sp.dataKey(key), nil) }

// DeletePrefix removes every key starting with prefix.
func (w *Writer) DeletePrefix(prefix []byte) error {
	lo := w.sp.dataKey(prefix)
	return w.b.DeleteRange(lo, prefixEnd(lo), nil)
}

// Scan is Space.Scan reading through the batch.
func (w *Writer) Scan(ctx context.Context, prefix, start []byte, reverse bool, fn func(key, val []byte) error) error {
	return scan(ctx, w.b, w.sp, prefix, start, reverse, fn)
}

// Update applies the events of evs newer than the cursor by calling fn for
// each inside one batch, then writes the new cursor in the same batch and
// commits it. It implements Projection.Apply for Store-backed projections.
func (sp *Space) Update(ctx context.Context, evs []*eventlog.Event, fn func(w *Writer, ev *eventlog.Event) error) error {
	return sp.UpdateBatch(ctx, evs, func(w *Writer, evs []*eventlog.Event) error {
		for _, ev := range evs {
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx)
			}
			if err := fn(w, ev); err != nil {
				return fmt.Errorf("apply seq %d: %w", ev.Seq, err)
			}
		}
		return nil
	})
}

// UpdateBatch is Update for projections that apply the new events of a
// batch in one call (to carry state from one event to the next and write
// each key once): fn gets the events newer than the cursor, in order, and
// none when there are none.
func (sp *Space) UpdateBatch(ctx context.Context, evs []*eventlog.Event, fn func(w *Writer, evs []*eventlog.Event) error) error {
	cursor, err := sp.Cursor(ctx)
	if err != nil {
		return err
	}
	evs, err = newEvents(cursor, evs)
	if err != nil || len(evs) == 0 {
		return err
	}
	w := &Writer{sp: sp, b: sp.db.NewIndexedBatch()}
	defer w.b.Close()
	if err := fn(w, evs); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	var cur [8]byte
	binary.BigEndian.PutUint64(cur[:], uint64(evs[len(evs)-1].Seq))
	if err := w.b.Set(sp.cursorKey(), cur[:], nil); err != nil {
		return err
	}
	return w.b.Commit(pebble.NoSync)
}

// KV is a Projection kept in one Space of a Store whose effects come from
// one function per event: most local projections are a KV plus queries.
type KV struct {
	Space *Space
	name  string
	apply func(w *Writer, evs []*eventlog.Event) error
}

// NewKV returns the projection name over its space in s, applying each
// event with apply (inside the batch that also advances the cursor).
func NewKV(s *Store, name string, apply func(w *Writer, ev *eventlog.Event) error) *KV {
	kv := &KV{Space: s.Space(name), name: name}
	kv.apply = func(w *Writer, evs []*eventlog.Event) error {
		for _, ev := range evs {
			if err := apply(w, ev); err != nil {
				return fmt.Errorf("apply seq %d: %w", ev.Seq, err)
			}
		}
		return nil
	}
	return kv
}

// NewBatchKV is NewKV for a projection that applies a batch's new events
// in one call (see Space.UpdateBatch); apply names the failing seq itself.
func NewBatchKV(s *Store, name string, apply func(w *Writer, evs []*eventlog.Event) error) *KV {
	return &KV{Space: s.Space(name), name: name, apply: apply}
}

var _ Projection = (*KV)(nil)

// Name implements Projection.
func (p *KV) Name() string { return p.name }

// Cursor implements Projection.
func (p *KV) Cursor(ctx context.Context) (eventlog.Seq, error) { return p.Space.Cursor(ctx) }

// Reset implements Projection.
func (p *KV) Reset(ctx context.Context) error { return p.Space.Reset(ctx) }

// Apply implements Projection.
func (p *KV) Apply(ctx context.Context, evs []*eventlog.Event) error {
	return p.Space.UpdateBatch(ctx, evs, p.apply)
}

// Metrics exposes Pebble's metrics.
func (s *Store) Metrics() *pebble.Metrics { return s.db.Metrics() }

// AsyncFlush starts writing the store's memtable to disk and returns a
// channel closed once it is written (see eventlog.Log.AsyncFlush).
func (s *Store) AsyncFlush() (<-chan struct{}, error) { return s.db.AsyncFlush() }
