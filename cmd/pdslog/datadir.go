package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
	"github.com/pdslog/pdslog/projections/blocks"
	"github.com/pdslog/pdslog/projections/records"
	"github.com/pdslog/pdslog/projections/repos"
)

// Data directory layout.
const (
	logSubdir   = "eventlog"      // the source of truth: back this up
	storeSubdir = "projections"   // rebuildable from the log by `pdslog replay`
	sealKeyPath = "keys/seal.key" // at-rest key for secrets in the log (0600)
	lockFile    = "pdslog.lock"
)

// dataDir is an open data directory: the log, the projection store and a
// runner over every local projection. One process holds it at a time.
type dataDir struct {
	path     string
	lock     *os.File
	log      *eventlog.Log
	store    *projections.Store
	repos    *repos.Projection
	blocks   *blocks.Projection
	records  *records.Projection
	accounts *accounts.Projection
	blobs    *blobs.Projection
	runner   *projections.Runner
}

type openOptions struct {
	command  string // who holds the lock, for the message others get
	seqFloor eventlog.Seq
	logger   *slog.Logger
	onSync   func(events int, took time.Duration)
	minFree  int64  // eventlog.Options.MinFreeBytes
	fs       vfs.FS // eventlog.Options.FS (tests); nil: the OS filesystem
}

// openDataDir locks and opens the data directory, creating it if needed.
func openDataDir(path string, o openOptions) (*dataDir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	lock, err := lockDataDir(path, o.command)
	if err != nil {
		return nil, err
	}
	d := &dataDir{path: path, lock: lock}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	key, err := eventlog.LoadOrCreateKey(filepath.Join(path, sealKeyPath))
	if err != nil {
		return nil, err
	}
	d.log, err = eventlog.Open(filepath.Join(path, logSubdir), &eventlog.Options{
		SealKey: key, SeqFloor: o.seqFloor, Logger: o.logger, OnSync: o.onSync, MinFreeBytes: o.minFree, FS: o.fs,
	})
	if err != nil {
		return nil, err
	}
	d.store, err = projections.OpenStore(filepath.Join(path, storeSubdir), &projections.StoreOptions{Logger: o.logger})
	if err != nil {
		return nil, err
	}
	d.repos, d.blocks, d.records, d.accounts = repos.New(d.store), blocks.New(d.store), records.New(d.store), accounts.New(d.store)
	d.blobs = blobs.New(d.store)
	d.runner = projections.NewRunner(d.log, d.projections(), &projections.RunnerOptions{Logger: o.logger})
	ok = true
	return d, nil
}

// projections lists every local projection, in the order they are fed.
func (d *dataDir) projections() []projections.Projection {
	return []projections.Projection{d.repos, d.blocks, d.records, d.accounts, d.blobs}
}

func (d *dataDir) close() error {
	var errs []error
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	if d.log != nil {
		errs = append(errs, d.log.Close())
	}
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
	}
	return errors.Join(errs...)
}

// lockDataDir takes an exclusive, non-blocking flock on the data dir's lock
// file and records who holds it. The kernel drops the lock when the process
// dies, so a crash never leaves the directory locked.
func lockDataDir(dir, command string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("data dir %s is in use by %s; stop it first", dir, who)
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pdslog %s (pid %d)\n", command, os.Getpid())), 0)
	return f, nil
}

// catchUp brings every projection up to the log head, showing progress.
func (d *dataDir) catchUp(ctx context.Context, p *progress) error {
	head := d.log.Head()
	p.start(head)
	d.runner.OnApply = func(name string, cursor eventlog.Seq, _ int, _ time.Duration) {
		p.update(name, cursor)
	}
	defer func() { d.runner.OnApply = nil }()
	err := d.runner.CatchUp(ctx, head)
	p.finish()
	return err
}
