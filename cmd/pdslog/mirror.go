package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/eventlog/blobstore/s3"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/mirror"
	"github.com/pdslog/pdslog/projections/mirror/d1"
)

// exitTempFail is the exit code of a mirror run that may succeed if
// tried again later (Cloudflare unreachable, rate limited or failing
// through every retry; the data dir held by serve): sysexits' EX_TEMPFAIL.
const exitTempFail = 75

// exitError is an error with its own exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

type mirrorCommand struct {
	stdout, stderr io.Writer
	common
	to       string
	once     bool
	follow   bool
	cf       mirrorSettings
	local    blobStoreSettings
	maxLag   uint64
	statusOf bool
}

const mirrorSummary = `Mirror the log into Cloudflare: rows in a D1 database (REST API), blobs in an
R2 bucket (S3 API), for a Worker to serve at the edge. The mirror's cursor is
kept in D1, written with the rows it covers: the mirror resumes where D1 says,
after any crash, and replaying never duplicates a row. The D1 schema
(migrations/) is applied first, recorded in d1_migrations as wrangler does.

  pdslog mirror --to cloudflare [--once | --follow]
  pdslog mirror status [--max-lag N]

--follow (the default) keeps mirroring new events until stopped; --once stops
when caught up. The mirror needs the data dir to itself: while serve runs,
mirror from inside it instead (serve --mirror-cloudflare). Exit codes: 0 done,
1 failed (fix the settings or report a bug), 2 usage, 75 try again later
(Cloudflare unreachable, rate limited or failing; the data dir in use),
130 interrupted.`

func (c *mirrorCommand) run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "status" {
		c.statusOf = true
		args = args[1:]
	}
	f := newFlags("mirror", mirrorSummary, c.stderr)
	c.register(f)
	c.cf.register(f)
	c.local.register(f)
	if c.statusOf {
		f.Uint64(&c.maxLag, "max-lag", 0, "with status: exit 1 when the mirror is more than this many events behind (0: never)")
	} else {
		f.String(&c.to, "to", "", "where to mirror: cloudflare")
		f.Bool(&c.once, "once", false, "stop once caught up with the log's head (for cron)")
		f.Bool(&c.follow, "follow", true, "keep mirroring new events until interrupted (the default; --once overrides)")
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if !c.statusOf && c.to != "cloudflare" {
		return usageError{fmt.Sprintf("--to must be cloudflare, not %q", c.to)}
	}
	if err := c.cf.validate(!c.statusOf); err != nil {
		return err
	}
	logger, err := c.logger(c.stderr)
	if err != nil {
		return err
	}
	if c.statusOf {
		return c.status(ctx, logger)
	}
	local, err := c.local.config()
	if err != nil {
		return err
	}
	store, err := local.open(ctx, c.dataDir)
	if err != nil {
		return err
	}
	d, err := pds.Open(c.dataDir, &pds.Options{Command: "mirror", Logger: logger, BlobStore: store})
	if err != nil {
		if errors.Is(err, pds.ErrInUse) {
			return exitError{exitTempFail, fmt.Errorf("%w (while serve runs, mirror with serve --mirror-cloudflare)", err)}
		}
		return err
	}
	defer d.Close()
	m, db, err := c.cf.open(store, d.Log.Head, logger)
	if err != nil {
		return err
	}
	r := projections.NewRunner(d.Log, []projections.Projection{m}, &projections.RunnerOptions{BatchSize: mirror.DefaultBatchEvents, Logger: logger})
	head := d.Log.Head()
	p := newProgress(c.stdout, logger, "mirror")
	p.start(head)
	r.OnApply = func(name string, cursor eventlog.Seq, _ int, _ time.Duration) { p.update(name, cursor) }
	start := time.Now()
	err = r.CatchUp(ctx, head)
	p.finish()
	if err != nil {
		return mirrorError(err)
	}
	st := m.Stats()
	took := time.Since(start)
	fmt.Fprintf(c.stdout, "mirror: caught up with seq %d: %d events in %s (%s events/s), %d D1 requests, %d R2 uploads, %d R2 deletions\n",
		head, st.Events, took.Round(time.Millisecond), human(float64(st.Events)/max(took.Seconds(), 1e-9)), db.Requests(), st.Uploads, st.Deleted)
	if c.once {
		return nil
	}
	logger.Info("mirror following the log", "seq", head)
	r.OnApply = func(name string, cursor eventlog.Seq, n int, took time.Duration) {
		logger.Info("mirrored", "seq", cursor, "events", n, "lag", uint64(d.Log.Head()-min(cursor, d.Log.Head())), "took", took.Round(time.Millisecond))
	}
	if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return mirrorError(err)
	}
	return nil
}

// mirrorError gives err the exit code a cron job can act on.
func mirrorError(err error) error {
	if d1.Temporary(err) || errors.Is(err, mirror.ErrCursorMoved) {
		return exitError{exitTempFail, err}
	}
	return err
}

// status prints the mirror's cursor in D1 against the log's head.
func (c *mirrorCommand) status(ctx context.Context, logger *slog.Logger) error {
	db, err := c.cf.client(logger)
	if err != nil {
		return err
	}
	st, err := mirror.ReadState(ctx, db, "")
	if err != nil {
		return mirrorError(err)
	}
	if !st.Exists {
		fmt.Fprintf(c.stdout, "mirror %s: nothing mirrored yet (cursor 0)\n", st.Name)
	} else {
		fmt.Fprintf(c.stdout, "mirror %s: cursor %d, written %s (%s ago)\n", st.Name, st.Cursor,
			st.UpdatedAt.Format(time.RFC3339), time.Since(st.UpdatedAt).Round(time.Second))
	}
	head, source := st.Head, "the log's head when the mirror last wrote"
	if d, err := pds.Open(c.dataDir, &pds.Options{Command: "mirror status", Logger: logger}); err == nil {
		head, source = d.Log.Head(), "the log's head"
		d.Close()
	} else {
		fmt.Fprintf(c.stdout, "log: not readable here (%v)\n", err)
	}
	lag := uint64(0)
	if head > st.Cursor {
		lag = uint64(head - st.Cursor)
	}
	fmt.Fprintf(c.stdout, "head %d (%s), lag %d events\n", head, source, lag)
	if c.maxLag > 0 && lag > c.maxLag {
		return fmt.Errorf("lag %d is over --max-lag %d", lag, c.maxLag)
	}
	return nil
}

// mirrorSettings are the Cloudflare settings of `pdslog mirror` and of
// serve --mirror-cloudflare, under the names Cloudflare's tools use.
type mirrorSettings struct {
	accountID, token, apiBase, databaseID string
	r2                                    s3.Options
	budget, maxStatements, maxAttempts    int
}

func (s *mirrorSettings) register(f *flags) {
	f.String(&s.accountID, "cf-account-id", "", "Cloudflare account id", "CLOUDFLARE_ACCOUNT_ID")
	f.Secret(&s.token, "cf-api-token", "Cloudflare API token with D1 Edit permission", "CLOUDFLARE_API_TOKEN")
	f.String(&s.apiBase, "cf-api-base", d1.DefaultAPIBase, "Cloudflare API base URL", "CLOUDFLARE_API_BASE_URL")
	f.String(&s.databaseID, "d1-database-id", "", "D1 database id (a UUID)", "PDS_D1_DATABASE_ID")
	f.String(&s.r2.Bucket, "r2-bucket", "", "R2 bucket for blobs", "PDS_R2_BUCKET")
	f.String(&s.r2.Endpoint, "r2-endpoint", "", "R2 S3 endpoint (default https://ACCOUNT_ID.r2.cloudflarestorage.com)", "PDS_R2_ENDPOINT")
	f.String(&s.r2.AccessKeyID, "r2-access-key-id", "", "R2 access key id", "PDS_R2_ACCESS_KEY_ID")
	f.Secret(&s.r2.SecretAccessKey, "r2-secret-access-key", "R2 secret access key", "PDS_R2_SECRET_ACCESS_KEY")
	f.String(&s.r2.Region, "r2-region", "auto", "R2 region", "PDS_R2_REGION")
	f.Int(&s.budget, "cf-request-budget", d1.DefaultBudget, "D1 API requests per 5 minutes at most (Cloudflare allows 1200 per user, shared by all its tokens)", "PDSLOG_CF_REQUEST_BUDGET")
	f.Int(&s.maxAttempts, "cf-max-attempts", d1.DefaultMaxAttempts, "tries per D1 request when Cloudflare is unreachable, rate limited or failing (with exponential backoff)", "PDSLOG_CF_MAX_ATTEMPTS")
	f.Int(&s.maxStatements, "d1-batch-statements", mirror.DefaultMaxStatements, "statements per D1 request", "PDSLOG_D1_BATCH_STATEMENTS")
}

// validate checks the settings; R2's only when needR2.
func (s *mirrorSettings) validate(needR2 bool) error {
	bad := func(env, format string, args ...any) error {
		return usageError{fmt.Sprintf("%s: %s", env, fmt.Sprintf(format, args...))}
	}
	switch {
	case s.accountID == "":
		return bad("CLOUDFLARE_ACCOUNT_ID", "not set")
	case s.token == "":
		return bad("CLOUDFLARE_API_TOKEN", "not set")
	case s.databaseID == "":
		return bad("PDS_D1_DATABASE_ID", "not set")
	case needR2 && s.r2.Bucket == "":
		return bad("PDS_R2_BUCKET", "not set")
	case s.budget == 0 || s.budget > 1200:
		return bad("PDSLOG_CF_REQUEST_BUDGET", "%d: must be 1..1200 (or negative: no limit)", s.budget)
	case s.maxAttempts < 1:
		return bad("PDSLOG_CF_MAX_ATTEMPTS", "%d: must be at least 1", s.maxAttempts)
	case s.maxStatements < 8:
		return bad("PDSLOG_D1_BATCH_STATEMENTS", "%d: must be at least 8", s.maxStatements)
	}
	if s.r2.Endpoint == "" {
		s.r2.Endpoint = "https://" + s.accountID + ".r2.cloudflarestorage.com"
	}
	s.r2.ForcePathStyle = true
	if _, err := d1.New(d1.Options{APIBase: s.apiBase, AccountID: s.accountID, DatabaseID: s.databaseID, Token: s.token}); err != nil {
		return bad("CLOUDFLARE_API_BASE_URL", "%v", err)
	}
	if _, err := s3.New(s.r2); err != nil && needR2 {
		return bad("PDS_R2_*", "%v", err)
	}
	return nil
}

func (s *mirrorSettings) client(logger *slog.Logger) (*d1.Client, error) {
	return d1.New(d1.Options{APIBase: s.apiBase, AccountID: s.accountID, DatabaseID: s.databaseID, Token: s.token,
		Budget: s.budget, MaxAttempts: s.maxAttempts, Logger: logger})
}

// open builds the mirror reading blob bytes from local.
func (s *mirrorSettings) open(local blobstore.Store, head func() eventlog.Seq, logger *slog.Logger) (*mirror.Mirror, *d1.Client, error) {
	db, err := s.client(logger)
	if err != nil {
		return nil, nil, err
	}
	blobs, blocks := s.r2, s.r2
	blobs.KeyPrefix, blocks.KeyPrefix = "blobs/", "blockstore/"
	bs, err := s3.New(blobs)
	if err != nil {
		return nil, nil, err
	}
	ks, err := s3.New(blocks)
	if err != nil {
		return nil, nil, err
	}
	m, err := mirror.New(mirror.Options{D1: db, Blobs: bs, Blocks: ks, Local: local, Head: head,
		MaxStatements: s.maxStatements, Logger: logger})
	return m, db, err
}

// runner returns a runner feeding the mirror inside serve: its Run
// retries failures with backoff and logs them; serve goes on regardless.
func (s *mirrorSettings) runner(l *eventlog.Log, local blobstore.Store, logger *slog.Logger) (*projections.Runner, error) {
	logger = logger.With("component", "mirror")
	m, _, err := s.open(local, l.Head, logger)
	if err != nil {
		return nil, err
	}
	r := projections.NewRunner(l, []projections.Projection{m}, &projections.RunnerOptions{BatchSize: mirror.DefaultBatchEvents, Logger: logger})
	r.OnApply = func(_ string, cursor eventlog.Seq, n int, took time.Duration) {
		logger.Debug("mirrored", "seq", cursor, "events", n, "lag", uint64(l.Head()-min(cursor, l.Head())), "took", took.Round(time.Millisecond))
	}
	logger.Info("mirroring to Cloudflare", "account", s.accountID, "d1_database", s.databaseID, "r2_bucket", s.r2.Bucket)
	return r, nil
}
