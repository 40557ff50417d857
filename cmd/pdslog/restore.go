package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"golang.org/x/term"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/backup"
	"github.com/pdslog/pdslog/eventlog/blobstore/disk"
)

type restoreCommand struct {
	stdout, stderr io.Writer
	stdin          *os.File
	common
	settings   backupSettings
	at         string
	seq        uint64
	generation string
	blobDir    string
	noVerify   bool
}

const restoreSummary = `Restore a data dir from a backup made by serve (PDSLOG_BACKUP_URL) or
'pdslog backup':

  pdslog restore --from s3://BUCKET/PREFIX [--at RFC3339 | --seq N] --data-dir DIR

The data dir must hold no log. Segments are downloaded a few at a time and
verified (checksums, dense seqs, each repo's commit chain, and — as replay
--verify — every commit's signature and proof); keys/ is decrypted with
PDSLOG_BACKUP_PASSPHRASE (asked for on a terminal when unset) or
PDSLOG_BACKUP_AGE_IDENTITY_FILE; blobs the backup holds go to the data dir's
blob store; then every projection is rebuilt. The log's seq floor is set to
the highest seq the server may have handed out (the last shipped, or the
reservation the backup records), never the restore point, and a #sync of
every repo follows, so relays see seqs only move forward and every repo's
state announced. --at restores the log as it stood at that moment (events
appended after it are left out), --seq up to that seq.`

func (c *restoreCommand) run(ctx context.Context, args []string) error {
	f := newFlags("restore", restoreSummary, c.stderr)
	c.register(f)
	f.String(&c.settings.url, "from", "", "the backup: s3://BUCKET/PREFIX or file:///PATH", "PDSLOG_BACKUP_URL")
	c.settings.register(f, false)
	f.String(&c.at, "at", "", "restore the log as it stood at this time (RFC 3339, e.g. 2026-11-26T12:00:00Z)")
	f.Uint64(&c.seq, "seq", 0, "restore the log up to and including this seq")
	f.String(&c.generation, "generation", "", "generation to restore (default: the one with the newest events; 'pdslog backup status' lists them)")
	f.String(&c.blobDir, "blobstore-disk-location", "", "where restored blobs go (default: DATA_DIR/blobs)", "PDS_BLOBSTORE_DISK_LOCATION")
	f.Bool(&c.noVerify, "no-verify", false, "skip the per-commit signature and proof checks (chains and checksums are always checked)")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := c.settings.validate("--from (PDSLOG_BACKUP_URL)", false); err != nil {
		return err
	}
	var at time.Time
	if c.at != "" {
		t, err := time.Parse(time.RFC3339Nano, c.at)
		if err != nil {
			return usageError{fmt.Sprintf("--at %q: not an RFC 3339 time (e.g. 2026-11-26T12:00:00Z)", c.at)}
		}
		at = t
		if c.seq != 0 {
			return usageError{"--at and --seq are exclusive"}
		}
	}
	if c.generation != "" && !backup.ValidGeneration(c.generation) {
		return usageError{fmt.Sprintf("--generation %q is not a generation name", c.generation)}
	}
	if c.settings.passphrase == "" && c.settings.identityFile == "" {
		pass, err := c.askPassphrase()
		if err != nil {
			return err
		}
		c.settings.passphrase = pass
	}
	ids, err := c.settings.identities()
	if err != nil {
		return err
	}
	logger, err := c.logger(c.stderr)
	if err != nil {
		return err
	}
	t, err := c.settings.target()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return err
	}
	lock, err := pds.Lock(c.dataDir, "restore")
	if err != nil {
		return err
	}
	blobDir := c.blobDir
	if blobDir == "" {
		blobDir = filepath.Join(c.dataDir, pds.BlobsDir)
	}
	dst, err := disk.Open(blobDir, nil)
	if err != nil {
		lock.Close()
		return err
	}
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400)) // as replay: much garbage, little kept
	}
	p := newProgress(c.stdout, logger, "restore")
	started := false
	o := backup.RestoreOptions{Target: t, Generation: c.generation, AtTime: at, AtSeq: eventlog.Seq(c.seq),
		LogDir: filepath.Join(c.dataDir, pds.LogDir), KeysDir: filepath.Join(c.dataDir, filepath.Dir(pds.SealKeyPath)),
		SealKeyName: filepath.Base(pds.SealKeyPath), Identities: ids, BlobDest: dst, Logger: logger,
		Progress: func(done, total eventlog.Seq) {
			if !started {
				p.start(total)
				started = true
			}
			p.update("log", done)
		}}
	if !c.noVerify {
		o.Check = commit.NewVerifier().Check
	}
	start := time.Now()
	res, err := backup.Restore(ctx, o)
	p.finish()
	lock.Close()
	if err != nil {
		var ve *eventlog.VerifyError
		if errors.As(err, &ve) {
			return fmt.Errorf("the backup diverges at seq %d: %s (nothing was restored)", ve.Seq, ve.Reason)
		}
		if errors.Is(err, backup.ErrPassphrase) {
			return usageError{fmt.Sprintf("PDSLOG_BACKUP_PASSPHRASE: %v", err)}
		}
		return err
	}
	fmt.Fprintf(c.stdout, "restore: generation %s: seqs 1..%d of %d restored (%d segments, %d bytes) in %s (%s events/s); %d keys; %d blobs (%d bytes, %d not in the backup); %d events purged\n",
		res.Generation, res.Restored, res.Shipped, res.Segments, res.SegmentBytes, res.Took.Round(time.Millisecond),
		human(float64(res.Restored)/max(res.Took.Seconds(), 1e-9)), res.KeysRestored, res.Blobs, res.BlobBytes, res.BlobsMissing, res.Purged)
	if res.BlobLocation.Location == backup.BlobsExternal {
		fmt.Fprintf(c.stdout, "restore: blobs were kept in bucket %s (endpoint %s) and not copied: serve with PDS_BLOBSTORE_S3_* pointing there\n",
			res.BlobLocation.Bucket, res.BlobLocation.Endpoint)
	}

	// Open with the floor (tombstones fill up to it), rebuild every
	// projection, then announce each repo's head.
	d, err := pds.Open(c.dataDir, &pds.Options{Command: "restore", SeqFloor: res.SeqFloor, Logger: logger, BlobStore: dst})
	if err != nil {
		return err
	}
	defer d.Close()
	rb := time.Now()
	rp := newProgress(c.stdout, logger, "rebuild")
	rp.start(d.Log.Head())
	err = d.CatchUp(ctx, rp.update)
	rp.finish()
	if err != nil {
		return fmt.Errorf("rebuild projections: %w", err)
	}
	rebuilt := time.Since(rb)
	syncs, err := announceRepos(ctx, d)
	if err != nil {
		return fmt.Errorf("announce repos: %w", err)
	}
	total := time.Since(start)
	fmt.Fprintf(c.stdout, "restore: seq floor %d (last shipped %d); projections rebuilt in %s; %d repos announced (#sync); done in %s (%s events/s overall)\n",
		res.SeqFloor, res.Shipped, rebuilt.Round(time.Millisecond), syncs, total.Round(time.Millisecond),
		human(float64(res.Restored)/max(total.Seconds(), 1e-9)))
	return nil
}

// askPassphrase reads the passphrase from the terminal, or says which
// variable to set when there is none.
func (c *restoreCommand) askPassphrase() (string, error) {
	in := c.stdin
	if in == nil || !term.IsTerminal(int(in.Fd())) {
		return "", usageError{"PDSLOG_BACKUP_PASSPHRASE: not set, and no terminal to ask on (or set PDSLOG_BACKUP_AGE_IDENTITY_FILE)"}
	}
	fmt.Fprint(c.stderr, "Backup passphrase: ")
	b, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", usageError{"PDSLOG_BACKUP_PASSPHRASE: empty"}
	}
	return string(b), nil
}

// announceRepos appends a #sync of every active repo's current head: a
// relay whose cursor is past what the backup held (it saw events lost with
// the machine) learns each repo's state as restored, and resynchronises
// instead of seeing a broken chain.
func announceRepos(ctx context.Context, d *pds.PDS) (int, error) {
	n := 0
	var after syntax.DID
	for {
		rs, err := d.Repos.List(ctx, after, 200)
		if err != nil {
			return n, err
		}
		var evs []*eventlog.Event
		for _, r := range rs {
			after = r.DID
			if !r.Active || r.Commit == "" {
				continue
			}
			head, err := d.Log.RepoHead(ctx, r.DID)
			if errors.Is(err, eventlog.ErrNotFound) {
				continue
			}
			if err != nil {
				return n, err
			}
			ev, err := commit.SyncEvent(ctx, r.DID, head, d.Blocks.Source(r.DID))
			if err != nil {
				return n, err
			}
			evs = append(evs, ev)
		}
		if len(evs) > 0 {
			seq, err := d.Log.Append(ctx, evs...)
			if err != nil {
				return n, err
			}
			if err := d.Runner.CatchUp(ctx, seq); err != nil {
				return n, err
			}
			n += len(evs)
		}
		if len(rs) < 200 {
			return n, nil
		}
	}
}
