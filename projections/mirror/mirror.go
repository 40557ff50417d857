package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/migrations"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/mirror/d1"
)

// Defaults.
const (
	DefaultName              = "cloudflare"
	DefaultMaxStatements     = 200
	DefaultMaxRequestBytes   = 4 << 20
	DefaultInlineLimit       = 1_000_000 // bytes of a value kept in a D1 row; D1 allows 2,000,000 per row
	DefaultUploadConcurrency = 4
	// DefaultBatchEvents is the events per Apply a Runner should hand a
	// Mirror: many requests' worth, so a backlog packs requests full.
	DefaultBatchEvents = 2000
)

// ErrCursorMoved is returned (wrapped) when D1's cursor is not the one a
// batch was built on (the database was wiped or another mirror wrote
// it): nothing is lost, the runner re-reads the cursor and goes on from it.
var ErrCursorMoved = errors.New("mirror: the cursor in D1 moved")

// Options configure a Mirror.
type Options struct {
	// Name is the mirror's row in mirror_state; "" means DefaultName.
	Name string
	// D1 is the database client. Required.
	D1 *d1.Client
	// Blobs is where blob bytes go in R2 (an s3 store with KeyPrefix
	// "blobs/"); Blocks is where blocks too large for D1 go (KeyPrefix
	// "blockstore/"). Required.
	Blobs, Blocks blobstore.Store
	// Local is the local blob store the bytes are read from. Required.
	Local blobstore.Store
	// Head, if set, is the log's head, recorded beside the cursor so that
	// `pdslog mirror status` can show the lag without opening the log.
	Head func() eventlog.Seq

	MaxStatements     int // statements per request; 0 means DefaultMaxStatements
	MaxRequestBytes   int // estimated body bytes per request; 0 means DefaultMaxRequestBytes
	InlineLimit       int // largest encoded value kept in D1; 0 means DefaultInlineLimit
	UploadConcurrency int // R2 uploads at once; 0 means DefaultUploadConcurrency

	Logger *slog.Logger // nil means slog.Default()
	Now    func() time.Time
}

// Stats count a mirror's work since it was made.
type Stats struct {
	Events   int64 // events applied (written or skipped as not mirrored)
	Requests int64 // D1 batch requests that wrote rows
	Uploads  int64 // R2 objects uploaded (or found there)
	Skipped  int64 // blobs not uploaded: gone from the local store
	Deleted  int64 // R2 objects or prefixes deleted
}

// Mirror is the Cloudflare mirror as a projections.Projection.
type Mirror struct {
	o      Options
	logger *slog.Logger

	mu     sync.Mutex
	cursor eventlog.Seq // the cursor D1 holds, as last read or written
	known  bool         // cursor is known; false after any error
	schema bool         // migrations applied (this run, since the last error)
	fill   *backfill    // the mirror_backfill row being worked through (backfill.go); nil when none

	events, requests, uploads, skipped, deleted atomic.Int64
}

var _ projections.Projection = (*Mirror)(nil)

// New returns a mirror; it sends nothing.
func New(o Options) (*Mirror, error) {
	if o.D1 == nil || o.Blobs == nil || o.Blocks == nil || o.Local == nil {
		return nil, errors.New("mirror: D1, Blobs, Blocks and Local are required")
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.MaxStatements <= 0 {
		o.MaxStatements = DefaultMaxStatements
	}
	if o.MaxStatements < 8 {
		return nil, fmt.Errorf("mirror: at least 8 statements per request, not %d", o.MaxStatements)
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.InlineLimit <= 0 {
		o.InlineLimit = DefaultInlineLimit
	}
	if o.InlineLimit > d1.MaxValueBytes/2 {
		return nil, fmt.Errorf("mirror: inline limit %d is over half of D1's %d bytes per row", o.InlineLimit, d1.MaxValueBytes)
	}
	if o.UploadConcurrency <= 0 {
		o.UploadConcurrency = DefaultUploadConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Mirror{o: o, logger: o.Logger.With("component", "mirror", "mirror", o.Name)}, nil
}

// Name implements projections.Projection.
func (m *Mirror) Name() string { return "mirror:" + m.o.Name }

// Stats returns the mirror's counters.
func (m *Mirror) Stats() Stats {
	return Stats{Events: m.events.Load(), Requests: m.requests.Load(), Uploads: m.uploads.Load(),
		Skipped: m.skipped.Load(), Deleted: m.deleted.Load()}
}

// forget makes the next Cursor or Apply re-read everything from D1.
func (m *Mirror) forget() {
	m.known, m.schema = false, false
}

// Cursor implements projections.Projection: it applies pending
// migrations, reads the cursor from D1 and finishes R2 deletions a crash
// interrupted.
func (m *Mirror) Cursor(ctx context.Context) (eventlog.Seq, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.load(ctx); err != nil {
		m.forget()
		return 0, err
	}
	if m.fill != nil {
		return m.fill.cursor, nil
	}
	return m.cursor, nil
}

func (m *Mirror) load(ctx context.Context) error {
	if m.known {
		return nil
	}
	if !m.schema {
		applied, err := migrations.Apply(ctx, m.o.D1)
		if err != nil {
			return err
		}
		if len(applied) > 0 {
			m.logger.Info("applied D1 migrations", "migrations", strings.Join(applied, ","))
		}
		m.schema = true
	}
	res, err := m.o.D1.Batch(ctx, []d1.Statement{
		{SQL: "SELECT cursor FROM mirror_state WHERE name = ?", Params: []string{m.o.Name}},
		{SQL: "SELECT key, seq FROM r2_trash ORDER BY seq"},
		fillStatement(m.o.Name),
	})
	if err != nil {
		return fmt.Errorf("mirror: read cursor: %w", err)
	}
	cursor := eventlog.Seq(0)
	if rows := res[0].Rows; len(rows) > 0 {
		c, err := d1.Int(rows[0]["cursor"])
		if err != nil || c < 0 {
			return fmt.Errorf("mirror: read cursor: %v", err)
		}
		cursor = eventlog.Seq(c)
	}
	var tr []trash
	for _, r := range res[1].Rows {
		k, _ := r["key"].(string)
		s, err := d1.Int(r["seq"])
		if err != nil {
			return fmt.Errorf("mirror: read r2_trash: %w", err)
		}
		tr = append(tr, trash{key: k, seq: eventlog.Seq(s)})
	}
	if len(tr) > 0 {
		m.logger.Info("finishing R2 deletions", "objects", len(tr))
		if err := m.drain(ctx, tr); err != nil {
			return err
		}
	}
	m.cursor = cursor
	if err := m.loadBackfill(ctx, res[2].Rows); err != nil {
		return err
	}
	m.known = true
	return nil
}

// Apply implements projections.Projection.
func (m *Mirror) Apply(ctx context.Context, evs []*eventlog.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.apply(ctx, evs); err != nil {
		m.forget()
		return err
	}
	return nil
}

func (m *Mirror) apply(ctx context.Context, evs []*eventlog.Event) error {
	if err := m.load(ctx); err != nil {
		return err
	}
	if m.fill != nil {
		rest, err := m.backfill(ctx, evs)
		if err != nil || m.fill != nil {
			return err
		}
		evs = rest
	}
	i := 0
	for i < len(evs) && evs[i].Seq <= m.cursor {
		i++
	}
	evs = evs[i:]
	for j, ev := range evs {
		if want := m.cursor + 1 + eventlog.Seq(j); ev.Seq != want {
			return fmt.Errorf("%w: got seq %d, want %d", projections.ErrGap, ev.Seq, want)
		}
	}
	req := m.newRequest()
	for _, ev := range evs {
		t, err := translate(ev, m.o.InlineLimit)
		if err != nil {
			return err
		}
		if req.stmts > 0 && !req.fits(t.ops) {
			if err := m.send(ctx, req, true); err != nil {
				return err
			}
			req = m.newRequest()
		}
		req.uploads = append(req.uploads, t.uploads...)
		if req.stmts == 0 && !req.fits(t.ops) {
			// One event too large for a request: its rows go in parts,
			// the cursor with the last (and its uploads before the first).
			for k := range t.ops {
				if !req.fits(t.ops[k : k+1]) {
					if err := m.send(ctx, req, false); err != nil {
						return err
					}
					req = m.newRequest()
				}
				req.add(t.ops[k : k+1])
			}
		} else {
			req.add(t.ops)
		}
		req.trash = append(req.trash, t.trash...)
		if len(t.trash) > 0 {
			req.maxStatements-- // room for the trash rows
		}
		req.last = ev.Seq
		m.events.Add(1)
	}
	if req.last > m.cursor {
		return m.send(ctx, req, true)
	}
	return nil
}

func (m *Mirror) newRequest() *request {
	return newRequest(m.o.MaxStatements, m.o.MaxRequestBytes)
}

// send uploads what req's rows name, sends req (with the cursor statement
// when withCursor), then deletes from R2 what req's rows dropped.
func (m *Mirror) send(ctx context.Context, req *request, withCursor bool) error {
	stmts, p := req.statements()
	if err := m.upload(ctx, p.uploads); err != nil {
		return err
	}
	if withCursor {
		head := req.last
		if m.o.Head != nil {
			head = max(head, m.o.Head())
		}
		stmts = append(stmts, d1.Statement{
			// Moves only forward, and only from the cursor this batch
			// was built on (or from a later one, when the same batch is
			// sent again after a failure D1 did not report).
			SQL: `INSERT INTO mirror_state (name, cursor, head, updated_at)
SELECT ?, ?, ?, ? WHERE CAST(? AS INTEGER) = 0 OR EXISTS (SELECT 1 FROM mirror_state WHERE name = ? AND cursor >= ?)
ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, head = excluded.head, updated_at = excluded.updated_at
WHERE excluded.cursor >= mirror_state.cursor
RETURNING cursor`,
			Params: []string{m.o.Name, seqs(req.last), seqs(head), m.o.Now().UTC().Format(time.RFC3339Nano),
				seqs(m.cursor), m.o.Name, seqs(m.cursor)},
		})
	}
	if len(stmts) == 0 {
		return nil
	}
	res, err := m.o.D1.Batch(ctx, stmts)
	if err != nil {
		return fmt.Errorf("mirror: write seqs through %d: %w", req.last, err)
	}
	m.requests.Add(1)
	if withCursor {
		rows := res[len(res)-1].Rows
		if len(rows) != 1 {
			return fmt.Errorf("%w: the batch through seq %d was built on cursor %d", ErrCursorMoved, req.last, m.cursor)
		}
		if c, err := d1.Int(rows[0]["cursor"]); err != nil || eventlog.Seq(c) != req.last {
			return fmt.Errorf("%w: cursor %v after the batch through seq %d", ErrCursorMoved, rows[0]["cursor"], req.last)
		}
		m.cursor = req.last
	}
	if len(p.trash) > 0 {
		return m.drain(ctx, p.trash)
	}
	return nil
}

// upload puts us in R2, several at once.
func (m *Mirror) upload(ctx context.Context, us []upload) error {
	if len(us) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, m.o.UploadConcurrency)
	var wg sync.WaitGroup
	seen := map[string]bool{}
	for _, u := range us {
		if seen[u.key] {
			continue
		}
		seen[u.key] = true
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := m.uploadOne(ctx, u); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

func (m *Mirror) uploadOne(ctx context.Context, u upload) error {
	if u.data != nil {
		if err := m.o.Blocks.Put(ctx, u.did, u.cid, bytes.NewReader(u.data), int64(len(u.data))); err != nil {
			return fmt.Errorf("mirror: upload block %s: %w", u.key, err)
		}
		m.uploads.Add(1)
		return nil
	}
	size, err := m.o.Local.Stat(ctx, u.did, u.cid)
	if errors.Is(err, blobstore.ErrNotFound) {
		m.skipped.Add(1)
		m.logger.Debug("blob gone from the local store; not uploaded", "did", u.did, "cid", u.cid.String(), "seq", u.seq)
		return nil
	}
	if err != nil {
		return fmt.Errorf("mirror: read blob %s: %w", u.key, err)
	}
	rc, err := m.o.Local.Open(ctx, u.did, u.cid, 0, -1)
	if errors.Is(err, blobstore.ErrNotFound) {
		m.skipped.Add(1)
		return nil
	}
	if err != nil {
		return fmt.Errorf("mirror: read blob %s: %w", u.key, err)
	}
	defer rc.Close()
	if err := m.o.Blobs.Put(ctx, u.did, u.cid, rc, size); err != nil {
		return fmt.Errorf("mirror: upload blob %s: %w", u.key, err)
	}
	m.uploads.Add(1)
	return nil
}

// drain deletes trashed objects from R2, then their r2_trash rows.
func (m *Mirror) drain(ctx context.Context, tr []trash) error {
	var keys []string
	for _, t := range tr {
		if err := m.deleteObject(ctx, t.key); err != nil {
			return err
		}
		m.deleted.Add(1)
		keys = append(keys, t.key)
	}
	var stmts []d1.Statement
	for _, o := range inList(tTrash, "DELETE FROM r2_trash WHERE key IN ", nil, keys) {
		stmts = append(stmts, d1.Statement{SQL: o.sql, Params: o.args})
	}
	if _, err := m.o.D1.Batch(ctx, stmts); err != nil {
		return fmt.Errorf("mirror: clear r2_trash: %w", err)
	}
	return nil
}

// deleteObject deletes blobs/DID/CID or blockstore/DID/CID, or every
// object under blobs/DID/ or blockstore/DID/.
func (m *Mirror) deleteObject(ctx context.Context, key string) error {
	store := m.o.Blobs
	rest, ok := strings.CutPrefix(key, blobPrefix)
	if !ok {
		if rest, ok = strings.CutPrefix(key, blockPrefix); !ok {
			m.logger.Warn("r2_trash entry of unknown shape; dropped", "key", key)
			return nil
		}
		store = m.o.Blocks
	}
	didPart, cidPart, _ := strings.Cut(rest, "/")
	did, err := syntax.ParseDID(didPart)
	if err != nil {
		m.logger.Warn("r2_trash entry of unknown shape; dropped", "key", key)
		return nil
	}
	if cidPart == "" {
		if err := store.DeleteAccount(ctx, did); err != nil {
			return fmt.Errorf("mirror: delete %s: %w", key, err)
		}
		return nil
	}
	c, err := cid.Parse(cidPart)
	if err != nil {
		m.logger.Warn("r2_trash entry of unknown shape; dropped", "key", key)
		return nil
	}
	if err := store.Delete(ctx, did, c); err != nil {
		return fmt.Errorf("mirror: delete %s: %w", key, err)
	}
	return nil
}

// Reset implements projections.Projection: it deletes every mirrored row
// and the cursor. R2 objects stay (content addressed, a replay finds them
// there); an operator who wants them gone empties the bucket.
func (m *Mirror) Reset(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget()
	if err := m.load(ctx); err != nil {
		return err
	}
	var stmts []d1.Statement
	for _, t := range didTables {
		stmts = append(stmts, d1.Statement{SQL: "DELETE FROM " + t.name})
	}
	stmts = append(stmts, d1.Statement{SQL: "DELETE FROM r2_trash"},
		d1.Statement{SQL: "DELETE FROM mirror_backfill WHERE name = ?", Params: []string{m.o.Name}},
		d1.Statement{SQL: "DELETE FROM mirror_state WHERE name = ?", Params: []string{m.o.Name}})
	if _, err := m.o.D1.Batch(ctx, stmts); err != nil {
		m.forget()
		return fmt.Errorf("mirror: reset: %w", err)
	}
	m.cursor, m.fill = 0, nil
	return nil
}

// State is a mirror's row in mirror_state.
type State struct {
	Name      string
	Cursor    eventlog.Seq
	Head      eventlog.Seq // the log's head when the cursor was written
	UpdatedAt time.Time
	Exists    bool // false: the mirror has written nothing yet
}

// ReadState reads the named mirror's state from D1 (without applying
// migrations: a database never mirrored to has no state).
func ReadState(ctx context.Context, db *d1.Client, name string) (State, error) {
	if name == "" {
		name = DefaultName
	}
	st := State{Name: name}
	rows, err := db.Batch(ctx, []d1.Statement{{SQL: "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'mirror_state'"}})
	if err != nil {
		return st, err
	}
	if len(rows[0].Rows) == 0 {
		return st, nil
	}
	res, err := db.Batch(ctx, []d1.Statement{{SQL: "SELECT cursor, head, updated_at FROM mirror_state WHERE name = ?", Params: []string{name}}})
	if err != nil {
		return st, err
	}
	if len(res[0].Rows) == 0 {
		return st, nil
	}
	r := res[0].Rows[0]
	c, err := d1.Int(r["cursor"])
	if err != nil {
		return st, err
	}
	h, err := d1.Int(r["head"])
	if err != nil {
		return st, err
	}
	st.Cursor, st.Head, st.Exists = eventlog.Seq(c), eventlog.Seq(h), true
	if s, ok := r["updated_at"].(string); ok {
		st.UpdatedAt, _ = time.Parse(time.RFC3339Nano, s)
	}
	return st, nil
}
