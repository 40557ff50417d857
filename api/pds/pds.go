package pds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/identity"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/api/pds/lexicon"
	"github.com/pdslog/pdslog/api/pds/mail"
	"github.com/pdslog/pdslog/api/pds/ssrf"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/eventlog/blobstore/disk"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
	"github.com/pdslog/pdslog/projections/blocks"
	oauthproj "github.com/pdslog/pdslog/projections/oauth"
	"github.com/pdslog/pdslog/projections/records"
	"github.com/pdslog/pdslog/projections/repos"
)

// Options configure Open. The zero value (or nil) opens a data dir for
// local use: a generated JWT secret and PLC rotation key in DIR/keys, blobs
// on disk in DIR/blobs, the default PLC directory.
type Options struct {
	// Command names the holder of the data dir's lock ("serve",
	// "replay"), for the message another process gets.
	Command string
	Logger  *slog.Logger // nil: slog.Default()

	// The log's options (see eventlog.Options).
	SeqFloor     eventlog.Seq
	MinFreeBytes int64
	FS           vfs.FS                               // nil: the OS filesystem (tests inject faults)
	OnSync       func(events int, took time.Duration) // the log's sync callback (metrics)
	Now          func() time.Time                     // the clock of the log, sessions and blob graces; nil: time.Now
	// BatchSize is how many events a projection applies at once
	// (projections.DefaultBatchSize when 0).
	BatchSize int

	// Service describes this PDS (hostname, handle domains, invites).
	Service Service
	// JWTSecret signs session tokens; nil: DIR/keys/jwt.secret, generated
	// on the first open.
	JWTSecret []byte
	// RotationKey signs PLC operations; nil: DIR/keys/plc-rotation.key,
	// generated on the first open.
	RotationKey *atcrypto.PrivateKeyK256
	// PLC is the PLC directory; nil: plc.directory.
	PLC *plc.Client
	// Directory resolves DIDs (service auth, imports, activation); nil: a
	// caching resolver over PLC and did:web with the SSRF guard (off in
	// DevMode).
	Directory identity.Directory
	// BlobStore holds blob bytes; nil: a disk store in DIR/blobs.
	BlobStore blobstore.Store
	// BlobGrace is how long a blob no record references is kept;
	// 0: DefaultBlobGrace.
	BlobGrace time.Duration
	// BlobCollectInterval is how often Run looks for blobs past their
	// grace; 0: DefaultBlobCollectInterval.
	BlobCollectInterval time.Duration
	// PasswordHashers is how many password hashes (scrypt, 16 MiB each)
	// run at once server-wide; 0: one per core (GOMAXPROCS). Logins and
	// signups beyond it queue...
	PasswordHashers int
	// ...for at most PasswordHashWait (0: auth.DefaultHashWait), then are
	// answered 503 (ErrPasswordBusy).
	PasswordHashWait time.Duration

	// Mail sends the emailed-token messages (PDS_EMAIL_SMTP_URL); nil
	// means none: with DevMode the messages go to the log, otherwise the
	// flows that mail answer ErrMailNotConfigured.
	Mail mail.Sender
	// MailFrom is their sender (PDS_EMAIL_FROM_ADDRESS); "" means
	// noreply@HOSTNAME.
	MailFrom string
	// ModerationMail and ModerationMailFrom send admin.sendEmail
	// (PDS_MODERATION_EMAIL_SMTP_URL, _ADDRESS); nil and "" mean Mail's.
	ModerationMail     mail.Sender
	ModerationMailFrom string
	// MailBackoff is the outbox's first retry delay; 0: mail.DefaultBackoff.
	MailBackoff time.Duration
	// DevMode: development (PDS_DEV_MODE).
	DevMode bool
	// RefuseImports refuses importRepo (PDS_ACCEPTING_REPO_IMPORTS=false).
	RefuseImports bool
	// MaxImportBlocks bounds the blocks of an imported CAR; 0 means
	// DefaultMaxImportBlocks.
	MaxImportBlocks int64
	// ImportFlushBytes is how many bytes of blocks an import commits
	// between flushes of the log's and the projections' memtables, which
	// bounds the memory an import fills; 0 means DefaultImportFlushBytes.
	ImportFlushBytes int64
}

// EnsureDefaults fills in the defaults of unset options.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Command == "" {
		o.Command = "pdslog"
	}
	if o.BatchSize <= 0 {
		o.BatchSize = projections.DefaultBatchSize
	}
	if o.PLC == nil {
		o.PLC = &plc.Client{URL: plc.DefaultURL}
	}
	if o.BlobGrace <= 0 {
		o.BlobGrace = DefaultBlobGrace
	}
	if o.BlobCollectInterval <= 0 {
		o.BlobCollectInterval = DefaultBlobCollectInterval
	}
	if o.Service.Hostname == "" {
		o.Service.Hostname = "localhost"
	}
	if o.Service.HandleDomains == nil {
		o.Service.HandleDomains = DefaultHandleDomains(o.Service.Hostname)
	}
}

// PDS is an open data directory and the write side over it. Its exported
// fields are for reads; writes go through its methods.
type PDS struct {
	Dir      string
	Log      *eventlog.Log
	Store    *projections.Store
	Runner   *projections.Runner
	Repos    *repos.Projection
	Blocks   *blocks.Projection
	Records  *records.Projection
	Accounts *accounts.Projection
	Blobs    *blobs.Projection
	// OAuth is the OAuth authorization server's state (requests, codes,
	// sessions, device sign-ins).
	OAuth *oauthproj.Projection
	// BlobStore holds the bytes of uploaded blobs.
	BlobStore blobstore.Store
	// Keys reads repo signing keys from the log.
	Keys *commit.SigningKeys
	// Builder builds commits (lexicon-validated records).
	Builder *commit.Builder
	// Tokens issues and verifies session tokens.
	Tokens *auth.Tokens
	// RotationKey signs this PDS's PLC operations.
	RotationKey *atcrypto.PrivateKeyK256
	// PLC is the PLC directory accounts are registered with.
	PLC *plc.Client
	// Directory resolves DID documents.
	Directory identity.Directory
	Service   Service
	// Hashing bounds concurrent password hashing (Options.PasswordHashers).
	Hashing *auth.HashGate

	opts      Options
	mail      *mailer
	lock      *os.File
	closeOnce sync.Once
	closeErr  error
	locks     sync.Map // syntax.DID -> *sync.Mutex
	claims    claims
	oauth     oauthState
	// busyLogged is when a saturated hashing gate was last logged (Unix ns).
	busyLogged atomic.Int64
}

// Open locks and opens the data directory dir (creating it if needed):
// the log, the projection store and every projection, and the write side.
// Every store in it is private (directories 0700, files 0600) whatever the
// umask; a data dir open to group or others is warned about, not refused.
// The projections are not caught up: call CatchUp (serve does, showing
// progress) or let Run follow the log.
func Open(dir string, o *Options) (*PDS, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	opts.EnsureDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pds: create data dir: %w", err)
	}
	lock, err := lockDataDir(dir, opts.Command)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		// Not refused: every store in it is made private below, so others
		// see names only; but the operator should know.
		opts.Logger.Warn("pds: the data dir is open to other users; its stores are kept private (0700/0600), but consider chmod 700",
			"dir", dir, "mode", st.Mode().Perm().String())
	}
	// The keys (and stores, as each opens) are private whatever an older
	// version or the umask left.
	if err := eventlog.MakePrivate(filepath.Join(dir, filepath.Dir(SealKeyPath))); err != nil {
		lock.Close()
		return nil, fmt.Errorf("pds: keys dir: %w", err)
	}
	p := &PDS{Dir: dir, lock: lock, opts: opts, Service: opts.Service, PLC: opts.PLC, Directory: opts.Directory,
		Hashing: auth.NewHashGate(opts.PasswordHashers, opts.PasswordHashWait)}
	if p.Directory == nil {
		p.Directory = &identity.Resolver{PLC: opts.PLC, Web: &http.Client{Transport: ssrf.Transport(!opts.DevMode)}, Logger: opts.Logger}
	}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	key, err := eventlog.LoadOrCreateKey(filepath.Join(dir, SealKeyPath))
	if err != nil {
		return nil, err
	}
	p.Log, err = eventlog.Open(filepath.Join(dir, LogDir), &eventlog.Options{
		SealKey: key, SeqFloor: opts.SeqFloor, Logger: opts.Logger, OnSync: opts.OnSync,
		MinFreeBytes: opts.MinFreeBytes, FS: opts.FS, Now: opts.Now,
	})
	if err != nil {
		return nil, err
	}
	p.Store, err = projections.OpenStore(filepath.Join(dir, ProjectionsDir), &projections.StoreOptions{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	p.Repos, p.Blocks, p.Records = repos.New(p.Store), blocks.New(p.Store), records.New(p.Store)
	p.Accounts, p.Blobs = accounts.New(p.Store), blobs.New(p.Store)
	p.OAuth = oauthproj.New(p.Store)
	p.Runner = projections.NewRunner(p.Log, p.Projections(), &projections.RunnerOptions{BatchSize: opts.BatchSize, Logger: opts.Logger})
	if err := p.openWriteSide(); err != nil {
		return nil, err
	}
	p.startMail()
	ok = true
	return p, nil
}

// openWriteSide loads the secrets and builds the commit machinery.
func (p *PDS) openWriteSide() error {
	jwt := p.opts.JWTSecret
	if jwt == nil {
		k, err := eventlog.LoadOrCreateKey(filepath.Join(p.Dir, JWTSecretPath))
		if err != nil {
			return fmt.Errorf("pds: jwt secret: %w", err)
		}
		jwt = k
	}
	var err error
	if p.Tokens, err = auth.NewTokens(jwt, p.Service.DID()); err != nil {
		return err
	}
	p.openOAuth()
	p.RotationKey = p.opts.RotationKey
	if p.RotationKey == nil {
		raw, err := eventlog.LoadOrCreateKey(filepath.Join(p.Dir, RotationKeyPath))
		if err != nil {
			return fmt.Errorf("pds: plc rotation key: %w", err)
		}
		if p.RotationKey, err = atcrypto.ParsePrivateBytesK256(raw); err != nil {
			return fmt.Errorf("pds: plc rotation key: %w", err)
		}
	}
	lex, err := lexicon.New()
	if err != nil {
		return fmt.Errorf("pds: load lexicons: %w", err)
	}
	p.Builder = commit.NewBuilder(nil)
	p.Builder.Validator = commit.Lexicons(lex)
	p.Keys = &commit.SigningKeys{Log: p.Log}
	p.BlobStore = p.opts.BlobStore
	if p.BlobStore == nil {
		dir := filepath.Join(p.Dir, BlobsDir)
		if p.BlobStore, err = disk.Open(dir, &disk.Options{TempDir: filepath.Join(dir, "tmp")}); err != nil {
			return fmt.Errorf("pds: open blob store: %w", err)
		}
	}
	return nil
}

// Projections lists every local projection, in the order they are fed.
func (p *PDS) Projections() []projections.Projection {
	return []projections.Projection{p.Repos, p.Blocks, p.Records, p.Accounts, p.Blobs, p.OAuth}
}

// Close closes the store, the log and the data dir's lock. Later calls
// return the first's result.
func (p *PDS) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.close() })
	return p.closeErr
}

func (p *PDS) close() error {
	p.mail.stop()
	var errs []error
	if p.Store != nil {
		errs = append(errs, p.Store.Close())
	}
	if p.Log != nil {
		errs = append(errs, p.Log.Close())
	}
	if p.lock != nil {
		errs = append(errs, p.lock.Close())
	}
	return errors.Join(errs...)
}

// hash runs password hashing fn through the server-wide gate:
// ErrPasswordBusy when it cannot get a turn in time.
func (p *PDS) hash(ctx context.Context, fn func()) error {
	err := p.Hashing.Do(ctx, fn)
	if errors.Is(err, auth.ErrHashBusy) {
		// Logged at most every 10 s: a flood must not flood the log too.
		now, last := time.Now().UnixNano(), p.busyLogged.Load()
		if now-last > int64(10*time.Second) && p.busyLogged.CompareAndSwap(last, now) {
			st := p.Hashing.Stats()
			p.opts.Logger.Warn("pds: password hashing is saturated; requests are refused with 503",
				"slots", st.Slots, "waiting", st.Waiting, "refused_total", st.Busy)
		}
		return &Error{Kind: ErrPasswordBusy, Msg: "the server is busy checking passwords; try again shortly"}
	}
	return err
}

// hashPassword hashes password for storing (auth.HashPassword) through
// the hashing gate.
func (p *PDS) hashPassword(ctx context.Context, password string) (string, error) {
	var hash string
	var err error
	if gerr := p.hash(ctx, func() { hash, err = auth.HashPassword(password) }); gerr != nil {
		return "", gerr
	}
	return hash, err
}

// verifyPassword reports whether password is the one encoded is the hash
// of (auth.VerifyPassword; a malformed hash matches nothing), through the
// hashing gate.
func (p *PDS) verifyPassword(ctx context.Context, password, encoded string) (bool, error) {
	var ok bool
	if err := p.hash(ctx, func() { ok, _ = auth.VerifyPassword(password, encoded) }); err != nil {
		return false, err
	}
	return ok, nil
}

// Now is the PDS's clock.
func (p *PDS) Now() time.Time { return p.opts.Now() }

// Logger is the PDS's logger.
func (p *PDS) Logger() *slog.Logger { return p.opts.Logger }

// CatchUp brings every projection up to the log's head; onApply, if set,
// is called after each batch (progress).
func (p *PDS) CatchUp(ctx context.Context, onApply func(projection string, cursor eventlog.Seq)) error {
	if onApply != nil {
		p.Runner.OnApply = func(name string, cursor eventlog.Seq, _ int, _ time.Duration) { onApply(name, cursor) }
		defer func() { p.Runner.OnApply = nil }()
	}
	return p.Runner.CatchUp(ctx, p.Log.Head())
}

// Run follows the log with the projections and collects unreferenced
// blobs until ctx ends.
func (p *PDS) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Runner.Run(ctx) })
	c := &collector{p: p, logger: p.opts.Logger.With("component", "blob_collector")}
	wg.Go(func() { _ = c.run(ctx) })
	wg.Go(func() { p.runDeletions(ctx) })
	wg.Wait()
	return nil
}

// Lock takes did's lock: every change to one account serialises on it.
// Call the returned func to release it.
func (p *PDS) Lock(did syntax.DID) (unlock func()) {
	m, _ := p.locks.LoadOrStore(did, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// commit appends evs atomically and waits until every projection shows
// them. It is the only append of the write side.
func (p *PDS) commit(ctx context.Context, evs ...*eventlog.Event) (eventlog.Seq, error) {
	seq, err := p.Log.Append(ctx, evs...)
	if err != nil {
		return 0, err
	}
	if err := p.Runner.CatchUp(ctx, seq); err != nil {
		return seq, fmt.Errorf("pds: durable at seq %d but projecting it failed: %w", seq, err)
	}
	return seq, nil
}
