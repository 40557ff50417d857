package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog/backup"
)

type backupCommand struct {
	stdout, stderr io.Writer
	common
	settings   backupSettings
	local      blobStoreSettings
	once       bool
	follow     bool
	statusOf   bool
	maxLag     uint64
	generation string
}

const backupSummary = `Ship the event log to a backup (s3://BUCKET/PREFIX, or file:///PATH) — what
serve does continuously when PDSLOG_BACKUP_URL is set — from a stopped data dir:

  pdslog backup [--once | --follow]
  pdslog backup status [--generation G] [--max-lag N]

Durable events go up in seq order as checksummed, compressed segments; keys/
goes up encrypted (PDSLOG_BACKUP_PASSPHRASE or PDSLOG_BACKUP_AGE_RECIPIENT);
blobs on disk go up once each. Shipping resumes where the backup says it got.
--once stops when caught up (and after applying account deletions to the
backup). 'backup status' prints the backup's head seq, the local head, the lag
and the last upload. Exit codes: 0 done, 1 failed, 2 usage, 75 try again later
(the data dir in use: serve ships itself when PDSLOG_BACKUP_URL is set),
130 interrupted.`

func (c *backupCommand) run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "status" {
		c.statusOf = true
		args = args[1:]
	}
	f := newFlags("backup", backupSummary, c.stderr)
	c.register(f)
	c.settings.register(f, true)
	c.local.register(f)
	if c.statusOf {
		f.Uint64(&c.maxLag, "max-lag", 0, "exit 1 when the backup is more than this many events behind the local log (0: never)")
		f.String(&c.generation, "generation", "", "generation to report on (default: the latest)")
	} else {
		f.Bool(&c.once, "once", false, "stop once caught up with the log's head (for cron)")
		f.Bool(&c.follow, "follow", true, "keep shipping new events until interrupted (the default; --once overrides)")
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if err := c.settings.validate("PDSLOG_BACKUP_URL", !c.statusOf); err != nil {
		return err
	}
	logger, err := c.logger(c.stderr)
	if err != nil {
		return err
	}
	if c.statusOf {
		return c.status(ctx, logger)
	}
	lc, err := c.local.config()
	if err != nil {
		return err
	}
	var external *backup.BlobsInfo
	if lc.s3 != nil {
		external = &backup.BlobsInfo{Location: backup.BlobsExternal, Bucket: lc.bucket, Endpoint: lc.endpoint}
	}
	local, err := lc.open(ctx, c.dataDir)
	if err != nil {
		return err
	}
	d, err := pds.Open(c.dataDir, &pds.Options{Command: "backup", Logger: logger, BlobStore: local})
	if err != nil {
		if errors.Is(err, pds.ErrInUse) {
			return exitError{exitTempFail, fmt.Errorf("%w (serve ships the log itself when PDSLOG_BACKUP_URL is set)", err)}
		}
		return err
	}
	defer d.Close()
	sh, err := c.settings.shipper(d.Log, c.dataDir, local, external, logger)
	if err != nil {
		return err
	}
	head := d.Log.Head()
	start := time.Now()
	if err := sh.CatchUp(ctx, head); err != nil {
		return err
	}
	st := sh.Stats()
	took := time.Since(start)
	perEvent := 0.0
	if st.Events > 0 {
		perEvent = float64(st.SegmentBytes) / float64(st.Events)
	}
	fmt.Fprintf(c.stdout, "backup: %s generation %s caught up with seq %d: %d events in %s (%s events/s), %d segments, %d bytes (%.1f bytes/event), %d blobs (%d bytes), %d manifest writes\n",
		c.settings.url, sh.Generation(), head, st.Events, took.Round(time.Millisecond), human(float64(st.Events)/max(took.Seconds(), 1e-9)),
		st.Segments, st.SegmentBytes, perEvent, st.Blobs, st.BlobBytes, st.ManifestWrites)
	if c.once || !c.follow {
		return nil
	}
	logger.Info("backup following the log", "seq", head)
	if err := sh.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// status prints the backup's state against the local log.
func (c *backupCommand) status(ctx context.Context, logger *slog.Logger) error {
	t, err := c.settings.target()
	if err != nil {
		return err
	}
	st, err := backup.ReadStatus(ctx, t, c.generation)
	if errors.Is(err, backup.ErrNoBackup) {
		fmt.Fprintf(c.stdout, "backup %s: nothing shipped yet\n", c.settings.url)
		return err
	}
	if err != nil {
		return err
	}
	m := st.Manifest
	fmt.Fprintf(c.stdout, "backup %s: generation %s (%d generation(s))\n", c.settings.url, m.Generation, len(st.Generations))
	last := "never"
	if !st.LastUpload.IsZero() {
		last = fmt.Sprintf("%s (%s ago)", st.LastUpload.UTC().Format(time.RFC3339), time.Since(st.LastUpload).Round(time.Second))
	}
	fmt.Fprintf(c.stdout, "remote head %d (%d segments, %d bytes), reserved through %d, last event %s, last upload %s\n",
		st.Head, st.Segments, st.Bytes, m.Reserved, m.HeadTime.UTC().Format(time.RFC3339), last)
	if len(m.Purges) > 0 {
		fmt.Fprintf(c.stdout, "purges not yet applied: %d account(s)\n", len(m.Purges))
	}
	if st.Stale > 0 {
		fmt.Fprintf(c.stdout, "stale segments (removed on the next resume): %d\n", st.Stale)
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, pds.LogDir)); err != nil {
		fmt.Fprintf(c.stdout, "local head: no log in %s\n", c.dataDir)
		return nil
	}
	d, err := pds.Open(c.dataDir, &pds.Options{Command: "backup status", Logger: logger})
	if err != nil {
		fmt.Fprintf(c.stdout, "local head: not readable here (%v)\n", err)
		return nil
	}
	head := d.Log.Head()
	d.Close()
	lag := uint64(0)
	if head > st.Head {
		lag = uint64(head - st.Head)
	}
	fmt.Fprintf(c.stdout, "local head %d, lag %d events\n", head, lag)
	if c.maxLag > 0 && lag > c.maxLag {
		return fmt.Errorf("lag %d is over --max-lag %d", lag, c.maxLag)
	}
	return nil
}
