package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/crawl"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog/backup"
	"github.com/pdslog/pdslog/projections"
)

// round is one open data dir and the server over it, from build to close.
type round struct {
	cfg    *serveConfig
	logger *slog.Logger
	pds    *pds.PDS
	srv    *api.Server
	mirror *projections.Runner // nil unless --mirror-cloudflare
	backup *backup.Shipper     // nil unless PDSLOG_BACKUP_URL (serve_backup.go)
}

// buildRound opens the data dir, catches the projections up (showing
// progress), prints the first-start invite if one is needed, and builds
// the server. It only constructs: nothing runs until serve.
func buildRound(ctx context.Context, cfg *serveConfig, logger *slog.Logger, stdout io.Writer, p *progress) (*round, error) {
	// The log's sync callback reports into the server's metrics, which are
	// built after the log is open.
	var metrics atomic.Pointer[api.Metrics]
	po := cfg.pds
	po.Logger = logger
	po.OnSync = func(n int, took time.Duration) {
		if m := metrics.Load(); m != nil {
			m.ObserveSync(n, took)
		}
	}
	d, err := pds.Open(cfg.dataDir, &po)
	if err != nil {
		return nil, err
	}
	r := &round{cfg: cfg, logger: logger, pds: d}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	p.start(d.Log.Head())
	err = d.CatchUp(ctx, p.update)
	p.finish()
	if err != nil {
		return nil, fmt.Errorf("catch up projections: %w", err)
	}
	code, err := d.FirstStartInvite(ctx)
	if err != nil {
		return nil, fmt.Errorf("first-start invite: %w", err)
	}
	if code != "" {
		fmt.Fprintf(stdout, "\nNo account exists yet. Invite code for the first account (single use):\n\n    %s\n\n", code)
	}
	if cfg.api.AdminPassword == "" {
		logger.Warn("PDS_ADMIN_PASSWORD is not set: admin methods are disabled")
	}
	switch {
	case cfg.pds.Mail == nil && cfg.pds.DevMode:
		logger.Warn("PDS_EMAIL_SMTP_URL is not set: account email (confirmation, password reset, sign-in codes) is written to this log (dev mode)")
	case cfg.pds.Mail == nil:
		logger.Warn("PDS_EMAIL_SMTP_URL is not set: no account email; email confirmation, password reset, account deletion and PLC operation codes answer an error naming it")
	}
	if !cfg.api.RateLimits {
		logger.Warn("PDS_RATE_LIMITS_ENABLED=false: per-address limits (requests, createAccount, uploads, connections, firehose subscriptions), write and handle-change limits are off (login and admin password throttling stay on)")
	}
	ac := cfg.api
	ac.Logger = logger
	r.srv = api.New(d, ac)
	metrics.Store(r.srv.Metrics())
	if cfg.mirror != nil {
		if r.mirror, err = cfg.mirror.runner(d.Log, d.BlobStore, logger); err != nil {
			return nil, mirrorError(fmt.Errorf("--mirror-cloudflare: %w", err))
		}
	}
	if r.backup, err = cfg.backupShipper(d, r.srv.Metrics().Registry, logger); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

func (r *round) close() error { return r.pds.Close() }

// serve serves the API until ctx ends, the listener fails, or the event log
// fails (failed is then true: the caller reopens the data dir once the disk
// takes writes again). It closes the round before it returns.
func (r *round) serve(ctx context.Context, shared *sharedListener, ready chan<- string) (failed bool, err error) {
	defer r.close()
	ln := shared.round()
	logger, d := r.logger, r.pds
	hs := r.cfg.httpServer(r.srv.Handler())

	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Run(runCtx) })
	if r.mirror != nil {
		wg.Go(func() { _ = r.mirror.Run(runCtx) })
	}
	if r.backup != nil {
		wg.Go(func() { _ = r.backup.Run(runCtx) })
	}
	if len(r.cfg.crawlers) > 0 {
		n := &crawl.Notifier{Hostname: r.cfg.hostname, Crawlers: r.cfg.crawlers, Logger: logger.With("component", "crawl")}
		wg.Go(func() {
			if err := n.Run(runCtx, d.Log); err != nil {
				logger.Error("crawl notifier stopped", "err", err)
			}
		})
	}
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- hs.Serve(ln) })
	logger.Info("serving", "addr", ln.Addr().String(), "hostname", r.cfg.hostname, "data_dir", r.cfg.dataDir, "seq", d.Log.Head())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
		logger.Info("shutting down", "drain_timeout", r.cfg.drain)
		// New connections are refused from now on; those in flight drain.
		_ = shared.Close()
	case err = <-serveErr:
	case <-d.Log.Failed():
		failed = true
		logger.Error("event log failed: draining, then reopening the data dir once the disk takes writes again",
			"err", d.Log.Failure(), "seq", d.Log.Head())
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), r.cfg.drain)
	defer cancel()
	// Firehose websockets are hijacked, so hs.Shutdown does not wait for
	// them: they are told to go away beside it, and end before the log
	// closes.
	streamsDone := make(chan error, 1)
	go func() { streamsDone <- r.srv.CloseStreams(shutCtx) }()
	if serr := hs.Shutdown(shutCtx); serr != nil {
		logger.Error("shutdown", "err", serr)
	}
	if serr := <-streamsDone; serr != nil {
		logger.Error("close firehose streams", "err", serr)
	}
	stop()
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return false, err
	}
	return failed, nil
}
