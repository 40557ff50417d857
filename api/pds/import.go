package pds

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	indigoidentity "github.com/bluesky-social/indigo/atproto/identity"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// Import limits.
const (
	// DefaultMaxImportSize bounds an importRepo body when none is set
	// (PDS_MAX_REPO_IMPORT_SIZE).
	DefaultMaxImportSize = 1 << 30
	// DefaultMaxImportBlocks bounds the blocks of one CAR: a CAR bomb of
	// tiny blocks is refused before it fills the spool.
	DefaultMaxImportBlocks = 5_000_000
	// importBatchBytes is the record bytes one import commit carries at
	// most, leaving room under the 2 MB #commit limit for MST nodes.
	importBatchBytes = 1_000_000
	// DefaultImportFlushBytes is how many bytes of commit blocks an import
	// appends between flushes of the log's and the projection store's
	// memtables when Options.ImportFlushBytes is 0 (see memtableBound).
	DefaultImportFlushBytes = 4 << 20
)

// Import errors.
var (
	ErrImportsDisabled = errors.New("pds: not accepting repo imports")
	ErrInvalidImport   = errors.New("pds: invalid repo import")
	ErrImportTooLarge  = errors.New("pds: repo import too large")
)

// ImportResult describes an imported repo.
type ImportResult struct {
	Commit  cid.Cid // the imported commit (signed by the account's key at the time)
	Rev     syntax.TID
	Records int
	Commits int // commits this PDS made to reach it
	Head    eventlog.RepoHead
}

// ImportRepo makes did's repo equal to the repo in the CAR stream body (at
// most limit bytes): the reference's importRepo, also over an existing repo
// (which it replaces). The CAR is spooled to disk while each block is
// checked against its CID, so memory stays bounded whatever its size; then
// everything is verified before anything is written — one root, the root
// commit's DID and its signature under the key the DID document names now,
// every MST node present, hashing to its CID and where the tree's rules put
// it, every record present, valid atproto data, under a valid
// collection/rkey. A CAR that fails changes nothing.
//
// The verified repo then goes into the log as ordinary #commit events this
// PDS signs with the account's key — the creates, updates and deletes that
// turn the current repo into the imported one, at most 200 ops and 2 MB of
// blocks each, as relays take them — followed by a repo.imported marker and
// a #sync of the resulting head. Every projection (records, blocks, blob
// references: the imported records' blobs become expected) follows them as
// it follows any commit, and the data root at the end is the imported one.
// A crash part-way leaves a valid repo between the two, which a repeated
// import completes.
func (p *PDS) ImportRepo(ctx context.Context, did syntax.DID, body io.Reader, limit int64) (*ImportResult, error) {
	if p.opts.RefuseImports {
		return nil, &Error{Kind: ErrImportsDisabled, Msg: "Service is not accepting repo imports"}
	}
	if limit <= 0 {
		limit = DefaultMaxImportSize
	}
	unlock := p.Lock(did)
	defer unlock()
	if _, err := p.changeable(ctx, did); err != nil {
		return nil, err
	}
	spool, err := p.openSpool()
	if err != nil {
		return nil, err
	}
	defer spool.close()
	maxBlocks := p.opts.MaxImportBlocks
	if maxBlocks <= 0 {
		maxBlocks = DefaultMaxImportBlocks
	}
	root, err := spool.fill(body, limit, maxBlocks)
	if err != nil {
		return nil, err
	}
	imported, err := p.verifyImportCommit(ctx, did, spool, root)
	if err != nil {
		return nil, err
	}
	records, err := verifyImportTree(ctx, spool, imported.Data)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{Commit: root, Rev: syntax.TID(imported.Rev), Records: records}
	if err := p.applyImport(ctx, did, spool, imported.Data, res); err != nil {
		return nil, err
	}
	return res, nil
}

// spoolBatchBytes is the size of the spool's write batches: under half its
// memtable (Pebble's default 4 MiB), so that Pebble copies them into it.
const spoolBatchBytes = 1 << 20

// spool holds an import's blocks on disk while they are verified.
type spool struct {
	db  *pebble.DB
	dir string
}

func (p *PDS) openSpool() (*spool, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(p.Dir, "tmp", "import-"+hex.EncodeToString(b[:]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pds: import spool: %w", err)
	}
	db, err := pebble.Open(dir, &pebble.Options{DisableWAL: true, Logger: quietPebble{}})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pds: import spool: %w", err)
	}
	return &spool{db: db, dir: dir}, nil
}

func (s *spool) close() {
	_ = s.db.Close()
	_ = os.RemoveAll(s.dir)
}

// Get is the spool as an mst.BlockSource.
func (s *spool) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	v, closer, err := s.db.Get(c.Bytes())
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: block %s is missing from the CAR", ErrInvalidImport, c)
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// fill reads the CAR into the spool, each block checked against its CID
// and refused if it came before, and returns its one root.
func (s *spool) fill(body io.Reader, limit, maxBlocks int64) (cid.Cid, error) {
	bad := func(format string, args ...any) error {
		return &Error{Kind: ErrInvalidImport, Msg: fmt.Sprintf(format, args...)}
	}
	r, err := car.NewReader(body, &car.ReaderOptions{MaxTotalBytes: limit, MaxBlocks: maxBlocks})
	if err != nil {
		return cid.Undef, s.carError(err, limit, maxBlocks)
	}
	if roots := r.Roots(); len(roots) != 1 {
		return cid.Undef, bad("expected one root, the CAR has %d", len(roots))
	}
	// Blocks go in in batches of spoolBatchBytes, which Pebble copies into
	// its memtable (a larger batch would be kept whole in memory until
	// flushed); a repeated block is caught in the batch by its key set,
	// or in the spool.
	batch := s.db.NewBatch()
	inBatch := make(map[string]struct{})
	for {
		c, data, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			batch.Close()
			return cid.Undef, s.carError(err, limit, maxBlocks)
		}
		k := c.Bytes()
		_, dup := inBatch[string(k)]
		if !dup {
			if _, closer, err := s.db.Get(k); err == nil {
				closer.Close()
				dup = true
			} else if !errors.Is(err, pebble.ErrNotFound) {
				batch.Close()
				return cid.Undef, err
			}
		}
		if dup {
			batch.Close()
			return cid.Undef, bad("block %s appears twice in the CAR", c)
		}
		if err := batch.Set(k, data, nil); err != nil {
			batch.Close()
			return cid.Undef, err
		}
		inBatch[string(k)] = struct{}{}
		if batch.Len() > spoolBatchBytes {
			if err := batch.Commit(pebble.NoSync); err != nil {
				return cid.Undef, err
			}
			batch = s.db.NewBatch()
			clear(inBatch)
		}
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return cid.Undef, err
	}
	return r.Roots()[0], nil
}

func (s *spool) carError(err error, limit, maxBlocks int64) error {
	switch {
	case errors.Is(err, car.ErrTooLarge):
		return &Error{Kind: ErrImportTooLarge, Msg: fmt.Sprintf("the repo is larger than this server accepts (%d bytes)", limit)}
	case errors.Is(err, car.ErrTooManyBlocks):
		return &Error{Kind: ErrInvalidImport, Msg: fmt.Sprintf("the CAR has more than %d blocks", maxBlocks)}
	}
	return &Error{Kind: ErrInvalidImport, Msg: fmt.Sprintf("not a valid CAR: %v", err)}
}

// verifyImportCommit checks the root commit: the account's, well formed,
// signed by the key the DID document names now.
func (p *PDS) verifyImportCommit(ctx context.Context, did syntax.DID, s *spool, root cid.Cid) (*indigorepo.Commit, error) {
	bad := func(format string, args ...any) error {
		return &Error{Kind: ErrInvalidImport, Msg: fmt.Sprintf(format, args...)}
	}
	data, err := s.Get(ctx, root)
	if err != nil {
		return nil, bad("the root commit %s is missing from the CAR", root)
	}
	var c indigorepo.Commit
	if err := c.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
		return nil, bad("the root is not a commit: %v", err)
	}
	if err := c.VerifyStructure(); err != nil {
		return nil, bad("the root commit is malformed: %v", err)
	}
	if c.DID != did.String() {
		return nil, bad("the repo is %s's, not %s's", c.DID, did)
	}
	if len(c.Sig) == 0 {
		return nil, bad("the root commit is not signed")
	}
	p.Directory.Purge(did)
	doc, err := p.Directory.Resolve(ctx, did)
	if err != nil {
		return nil, &Error{Kind: ErrPLC, Msg: fmt.Sprintf("could not resolve %s to check the commit's signature: %v", did, err)}
	}
	ident := indigoidentity.ParseIdentity(doc)
	pub, err := ident.PublicKey()
	if err != nil {
		return nil, bad("the DID document of %s names no signing key: %v", did, err)
	}
	if err := c.VerifySignature(pub); err != nil {
		return nil, bad("the root commit's signature does not verify under %s's signing key", did)
	}
	return &c, nil
}

// verifyImportTree walks the imported MST (each node read, hash-checked and
// placed by the tree's rules as it is loaded) and checks every entry's key
// and record; it returns the number of records.
func verifyImportTree(ctx context.Context, s *spool, data cid.Cid) (int, error) {
	tree, err := mst.Load(ctx, s, data)
	if err != nil {
		return 0, importTreeError(err)
	}
	n := 0
	err = tree.Walk(ctx, "", func(key string, val cid.Cid) error {
		if err := checkImportKey(key); err != nil {
			return err
		}
		rec, err := s.Get(ctx, val)
		if err != nil {
			return err
		}
		if len(rec) > commit.MaxBlocksBytes/2 {
			return &Error{Kind: ErrInvalidImport, Msg: fmt.Sprintf("record %s is %d bytes, too large to commit", key, len(rec))}
		}
		if _, err := atdata.UnmarshalCBOR(rec); err != nil {
			return &Error{Kind: ErrInvalidImport, Msg: fmt.Sprintf("record %s is not valid atproto data: %v", key, err)}
		}
		n++
		return nil
	})
	if err != nil {
		return 0, importTreeError(err)
	}
	return n, nil
}

func importTreeError(err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return &Error{Kind: ErrInvalidImport, Msg: fmt.Sprintf("invalid repo tree: %v", err)}
}

// checkImportKey checks an MST key is collection/rkey with a valid NSID
// and record key.
func checkImportKey(key string) error {
	bad := &Error{Kind: ErrInvalidImport, Msg: fmt.Sprintf("invalid record path %q", key)}
	if mst.ValidateKey(key) != nil {
		return bad
	}
	coll, rkey, ok := bytesCut(key)
	if !ok {
		return bad
	}
	if _, err := syntax.ParseNSID(coll); err != nil {
		return bad
	}
	if _, err := syntax.ParseRecordKey(rkey); err != nil {
		return bad
	}
	return nil
}

func bytesCut(key string) (string, string, bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:], true
		}
	}
	return "", "", false
}

// entries is the sorted (key, value) stream of a tree.
func entries(ctx context.Context, t *mst.Tree, errp *error) iter.Seq2[string, cid.Cid] {
	return func(yield func(string, cid.Cid) bool) {
		err := t.Walk(ctx, "", func(k string, v cid.Cid) error {
			if !yield(k, v) {
				return mst.ErrStopWalk
			}
			return nil
		})
		if err != nil && *errp == nil {
			*errp = err
		}
	}
}

// applyImport commits the difference between did's repo and the imported
// tree, in commits relays accept, then the marker and a #sync.
func (p *PDS) applyImport(ctx context.Context, did syntax.DID, s *spool, data cid.Cid, res *ImportResult) error {
	key, err := p.SigningKey(ctx, did)
	if err != nil {
		return err
	}
	var head *eventlog.RepoHead
	cur := mst.NewEmpty(p.Blocks.Source(did))
	if h, err := p.Log.RepoHead(ctx, did); err == nil {
		head = &h
		if err := p.Runner.CatchUp(ctx, h.Seq); err != nil {
			return err
		}
		if cur, err = mst.Load(ctx, p.Blocks.Source(did), h.Data); err != nil {
			return err
		}
	} else if !errors.Is(err, eventlog.ErrNotFound) {
		return err
	}
	next, err := mst.Load(ctx, s, data)
	if err != nil {
		return importTreeError(err)
	}
	var curErr, nextErr error
	curNext, stopCur := iter.Pull2(entries(ctx, cur, &curErr))
	defer stopCur()
	newNext, stopNew := iter.Pull2(entries(ctx, next, &nextErr))
	defer stopNew()

	bound := &memtableBound{dbs: []flusher{p.Log, p.Store}, every: p.opts.ImportFlushBytes}
	if bound.every <= 0 {
		bound.every = DefaultImportFlushBytes
	}
	defer bound.wait(ctx)
	var batch []commit.Write
	var batchBytes int
	flush := func() error {
		if len(batch) == 0 && head != nil {
			return nil
		}
		h, err := p.commitImport(ctx, did, head, key, batch, bound)
		if err != nil {
			return err
		}
		head, batch, batchBytes = h, nil, 0
		res.Commits++
		if res.Commits%100 == 0 {
			p.opts.Logger.Info("importing repo", "did", did, "commits", res.Commits, "rev", h.Rev)
		}
		return nil
	}
	add := func(w commit.Write) error {
		if len(batch) == commit.MaxOps || batchBytes+len(w.Encoded) > importBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, w)
		batchBytes += len(w.Encoded)
		return nil
	}
	write := func(action, key string, c cid.Cid) (commit.Write, error) {
		coll, rkey, _ := bytesCut(key)
		w := commit.Write{Action: action, Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey)}
		if action != eventlog.ActionDelete {
			data, err := s.Get(ctx, c)
			if err != nil {
				return w, err
			}
			w.Encoded, w.EncodedCID = data, c
		}
		return w, nil
	}
	ck, cv, cok := curNext()
	nk, nv, nok := newNext()
	for cok || nok {
		var w commit.Write
		switch {
		case cok && (!nok || ck < nk): // gone from the imported repo
			w, err = write(eventlog.ActionDelete, ck, cid.Undef)
			ck, cv, cok = curNext()
		case nok && (!cok || nk < ck): // new
			w, err = write(eventlog.ActionCreate, nk, nv)
			nk, nv, nok = newNext()
		default: // in both
			if cv.Equals(nv) {
				ck, cv, cok = curNext()
				nk, nv, nok = newNext()
				continue
			}
			w, err = write(eventlog.ActionUpdate, nk, nv)
			ck, cv, cok = curNext()
			nk, nv, nok = newNext()
		}
		if err != nil {
			return err
		}
		if err := add(w); err != nil {
			return err
		}
	}
	if err := errors.Join(curErr, nextErr); err != nil {
		return err
	}
	if len(batch) > 0 || head == nil {
		if err := flush(); err != nil {
			return err
		}
	}
	if !head.Data.Equals(data) {
		return fmt.Errorf("pds: import of %s ended at data root %s, not the imported %s", did, head.Data, data)
	}
	sync, err := commit.SyncEvent(ctx, did, *head, p.Blocks.Source(did))
	if err != nil {
		return err
	}
	marker, err := events.New(did, &events.RepoImported{Commit: res.Commit.String(), Rev: res.Rev.String(), Data: data.String(),
		Records: res.Records, Commits: res.Commits, Head: head.Commit.String()})
	if err != nil {
		return err
	}
	if _, err := p.commit(ctx, marker, sync); err != nil {
		return err
	}
	res.Head = *head
	p.opts.Logger.Info("repo imported", "did", did, "records", res.Records, "commits", res.Commits, "rev", head.Rev)
	return nil
}

// commitImport builds and appends one import commit on head.
func (p *PDS) commitImport(ctx context.Context, did syntax.DID, head *eventlog.RepoHead, key atcrypto.PrivateKey, writes []commit.Write, bound *memtableBound) (*eventlog.RepoHead, error) {
	res, err := p.Builder.Build(ctx, commit.Repo{DID: did, Head: head, Key: key, Blocks: p.Blocks.Source(did)}, writes)
	if errors.Is(err, commit.ErrCommitTooLarge) && len(writes) > 1 {
		// Too many new MST nodes with these records: in two commits.
		h, err := p.commitImport(ctx, did, head, key, writes[:len(writes)/2], bound)
		if err != nil {
			return nil, err
		}
		return p.commitImport(ctx, did, h, key, writes[len(writes)/2:], bound)
	}
	if err != nil {
		return nil, err
	}
	seq, err := p.commit(ctx, res.Event)
	if err != nil {
		return nil, err
	}
	if err := bound.wrote(ctx, len(res.Event.Commit.Blocks)); err != nil {
		return nil, err
	}
	c := res.Event.Commit
	return &eventlog.RepoHead{Seq: seq, Rev: c.Rev, Commit: c.Commit, Data: c.Data}, nil
}

// flusher is a Pebble store whose memtable can be flushed early.
type flusher interface {
	AsyncFlush() (<-chan struct{}, error)
}

// memtableBound keeps the memory an import fills in Pebble bounded. The log
// and the projection store have 32 MiB memtables (tuned for the steady
// load), and Pebble holds up to three per store at a time: the one being
// filled, the one being flushed, and a spent one kept for reuse, whose
// pages the process touched as they filled. An import writes its whole repo
// into both stores in one burst, so it filled them all: the server's peak
// RSS grew with the repo until they were full (97 MB for a 100k-record
// repo, 152 MB for 300k). Flushing both stores every few MB of blocks
// (DefaultImportFlushBytes) bounds what a memtable holds, and so what the
// process touches, whatever the repo's size. The flushes run in the
// background while the import goes on; the next waits for them, so no more
// than one is in progress per store.
type memtableBound struct {
	dbs     []flusher
	every   int64 // bytes between flushes
	bytes   int64
	pending []<-chan struct{}
}

// wrote counts n bytes written to the stores, and flushes them once every
// bytes accumulated since the last flush.
func (m *memtableBound) wrote(ctx context.Context, n int) error {
	m.bytes += int64(n)
	if m.bytes < m.every {
		return nil
	}
	m.bytes = 0
	if err := m.wait(ctx); err != nil {
		return err
	}
	for _, db := range m.dbs {
		done, err := db.AsyncFlush()
		if err != nil {
			return fmt.Errorf("pds: import: flush: %w", err)
		}
		m.pending = append(m.pending, done)
	}
	return nil
}

// wait waits for the flushes in progress.
func (m *memtableBound) wait(ctx context.Context) error {
	for _, done := range m.pending {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.pending = m.pending[:0]
	return nil
}

// quietPebble keeps the spool's Pebble quiet.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
