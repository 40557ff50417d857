package eventlog

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrImportOrder is returned by Importer.Add for a seq that is not the one
// after the log's last: an import keeps seqs dense.
var ErrImportOrder = errors.New("eventlog: import out of order")

// ImportOptions configure an Importer.
type ImportOptions struct {
	// FS is the filesystem Pebble runs on; nil means the OS filesystem.
	FS vfs.FS
	// SealKey opens sealed private payloads, so that Add hands back the
	// events as Get would. Required.
	SealKey []byte
	// Logger receives Pebble's messages; nil means slog.Default().
	Logger *slog.Logger
	// BatchEvents and BatchBytes bound one Pebble batch (defaults 4096
	// events, 16 MiB).
	BatchEvents int
	BatchBytes  int
}

// Importer writes stored events, at the seqs they were first given, into a
// log directory no Log has open: the way a restore puts a backup back. It
// keeps the log's invariants as Append does — dense seqs, each repo's
// commits chaining on its head (checked as Verify checks them), the
// per-repo index and the heads — and batches writes without syncing
// until Close, which makes everything durable at once. It is not safe for
// concurrent use.
type Importer struct {
	db      *pebble.DB
	sealer  *sealer
	opts    ImportOptions
	next    Seq
	b       *pebble.Batch
	n, size int
	heads   map[syntax.DID]*RepoHead // written in the open batch; nil: deleted
	closed  bool
}

// OpenImporter opens (creating if needed) the log in dir for import. The
// next seq Add accepts is the one after the last on disk.
func OpenImporter(dir string, opts *ImportOptions) (*Importer, error) {
	o := ImportOptions{}
	if opts != nil {
		o = *opts
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BatchEvents <= 0 {
		o.BatchEvents = 4096
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 16 << 20
	}
	s, err := newSealer(o.SealKey)
	if err != nil {
		return nil, err
	}
	// Private from the first file, as Open makes the log.
	fs, err := StoreFS(dir, o.FS)
	if err != nil {
		return nil, fmt.Errorf("open log for import: %w", err)
	}
	db, err := pebble.Open(dir, TunedPebbleOptions(&pebble.Options{FS: fs, Logger: PebbleLogger(o.Logger)}))
	if err != nil {
		return nil, fmt.Errorf("open log for import: %w", err)
	}
	im := &Importer{db: db, sealer: s, opts: o, heads: map[syntax.DID]*RepoHead{}}
	l := &Log{db: db}
	last, err := l.lastSeq()
	if err != nil {
		db.Close()
		return nil, err
	}
	im.next = last + 1
	im.b = db.NewBatch()
	return im, nil
}

// Next returns the seq the next Add must carry.
func (im *Importer) Next() Seq { return im.next }

// Add writes the stored value val at seq, which must be Next(). It checks
// that val decodes and that a commit or sync follows its repo's head (a
// *VerifyError otherwise), and returns the event with sealed private data
// opened (a tombstone as KindTombstone). Nothing is durable before Close.
func (im *Importer) Add(seq Seq, val []byte) (*Event, error) {
	if im.closed {
		return nil, ErrClosed
	}
	if seq != im.next {
		return nil, fmt.Errorf("%w: seq %d, want %d", ErrImportOrder, seq, im.next)
	}
	ev := &Event{}
	if err := decodeValue(val, ev); err != nil {
		return nil, fmt.Errorf("seq %d: %w", seq, err)
	}
	ev.Seq = seq
	if ev.Kind != KindTombstone {
		if err := ev.validate(); err != nil {
			return nil, fmt.Errorf("seq %d: %w", seq, err)
		}
	}
	if ev.Private != nil && ev.Private.Secret {
		data, err := im.sealer.open(string(ev.DID), ev.Private.Type, ev.Private.Data)
		if err != nil {
			return nil, fmt.Errorf("seq %d: %w", seq, err)
		}
		ev.Private.Data = data
	}
	if ev.Kind == KindCommit || ev.Kind == KindSync {
		cur, err := im.head(ev.DID)
		if err != nil {
			return nil, err
		}
		nh, err := advanceHead(cur, ev, seq)
		if err != nil {
			return nil, &VerifyError{Seq: seq, DID: ev.DID, Reason: err.Error()}
		}
		hv, err := encodeHead(nh)
		if err != nil {
			return nil, err
		}
		_ = im.b.Set(headKey(ev.DID), hv, nil)
		im.heads[ev.DID] = &nh
	}
	_ = im.b.Set(eventKey(seq), val, nil)
	if ev.Kind != KindTombstone {
		_ = im.b.Set(repoKey(ev.DID, seq), nil, nil)
	}
	im.next++
	im.n++
	im.size += len(val) + 64
	if im.n >= im.opts.BatchEvents || im.size >= im.opts.BatchBytes {
		if err := im.flush(pebble.NoSync); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// head is did's head as of everything added so far.
func (im *Importer) head(did syntax.DID) (*RepoHead, error) {
	if h, ok := im.heads[did]; ok {
		return h, nil
	}
	val, closer, err := im.db.Get(headKey(did))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	h, err := decodeHead(val)
	if err != nil {
		return nil, err
	}
	return &h, nil
}

func (im *Importer) flush(opt *pebble.WriteOptions) error {
	if !im.b.Empty() {
		if err := im.b.Commit(opt); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	_ = im.b.Close()
	im.b = im.db.NewBatch()
	im.n, im.size = 0, 0
	clear(im.heads)
	return nil
}

// Purge does what Log.Purge does, for an account deleted by an event
// already added: every event of did below before becomes a tombstone, its
// index entries go, and its head too if it predates before. It returns
// how many events it tombstoned.
func (im *Importer) Purge(did syntax.DID, before Seq) (int, error) {
	if im.closed {
		return 0, ErrClosed
	}
	if err := im.flush(pebble.NoSync); err != nil {
		return 0, err
	}
	prefix := repoPrefix(did)
	upper := append(append([]byte{}, prefix...), 0xff)
	it, err := im.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return 0, err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+8 {
			continue
		}
		seq := Seq(beUint64(k[len(prefix):]))
		if seq >= before {
			break
		}
		_ = im.b.Set(eventKey(seq), TombstoneValue(), nil)
		_ = im.b.Delete(append([]byte{}, k...), nil)
		n++
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	cur, err := im.head(did)
	if err != nil {
		return 0, err
	}
	if cur != nil && cur.Seq < before {
		_ = im.b.Delete(headKey(did), nil)
	}
	if err := im.flush(pebble.NoSync); err != nil {
		return 0, err
	}
	return n, nil
}

// Close makes everything added durable (one synced commit and a flush)
// and closes the directory, which Open can then open.
func (im *Importer) Close() error {
	if im.closed {
		return ErrClosed
	}
	im.closed = true
	err := im.flush(pebble.Sync)
	_ = im.b.Close()
	if err == nil {
		err = im.db.Flush()
	}
	if cerr := im.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close imported log: %w", cerr)
	}
	return err
}
