package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/blob"
	"github.com/pdslog/pdslog/api/crawl"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/api/pds/lexicon"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/server"
	"github.com/pdslog/pdslog/eventlog"
)

type serveCommand struct {
	stdout, stderr io.Writer
	common
	hostname string
	port     int
	bind     string
	seqFloor uint64
	drain    time.Duration
	minFree  int64

	handleDomains  string
	inviteRequired bool
	contactEmail   string
	privacyPolicy  string
	termsOfService string
	corsOrigins    string
	jwtSecret      string
	plcRotationHex string
	plcURL         string
	adminPassword  string
	devMode        bool
	crawlers       string
	rateLimits     bool
	pprofAddr      string
	blobs          blobSettings
	proxy          proxySettings
	firehose       firehoseSettings
	mirrorOn       bool
	mirror         mirrorSettings
	backup         backupSettings

	// ready, if set, receives the listening address (tests).
	ready chan<- string
	// logFS, if set, is the filesystem the event log runs on (tests inject
	// faults through it); nil means the OS filesystem.
	logFS vfs.FS
	// metrics of the current round of serving (the log's sync callback
	// reports into it).
	metrics *atomic.Pointer[api.Metrics]
}

const serveSummary = `Run the PDS. With no flags it serves http://localhost:2583 from ./data.`

func (c *serveCommand) run(ctx context.Context, args []string) error {
	f := newFlags("serve", serveSummary, c.stderr)
	c.register(f)
	f.String(&c.hostname, "hostname", "localhost", "public hostname of this PDS", "PDS_HOSTNAME")
	f.Int(&c.port, "port", 2583, "port to listen on", "PDS_PORT")
	f.String(&c.bind, "bind", "", "address to listen on (default: localhost when --hostname is localhost, else all interfaces)", "PDSLOG_BIND")
	f.Uint64(&c.seqFloor, "seq-floor", 0, "after restoring an old copy of the log: the highest seq ever handed out, so no seq is reused", "PDSLOG_SEQ_FLOOR")
	f.Int64(&c.minFree, "min-free-space", eventlog.DefaultMinFreeBytes, "bytes kept free on the data dir's disk: writes and uploads that would eat into them answer 503 until space is freed (negative: no check)", "PDSLOG_MIN_FREE_SPACE")
	f.DurationVar(&c.drain, "drain-timeout", 30*time.Second, "how long shutdown waits for in-flight requests")
	f.String(&c.handleDomains, "handle-domains", "", "comma-separated handle suffixes users may sign up under (default: .HOSTNAME, .test for localhost)", "PDS_SERVICE_HANDLE_DOMAINS")
	f.Bool(&c.inviteRequired, "invite-required", true, "require an invite code to create an account", "PDS_INVITE_REQUIRED")
	f.String(&c.contactEmail, "contact-email", "", "contact address shown by describeServer", "PDS_CONTACT_EMAIL_ADDRESS")
	f.String(&c.privacyPolicy, "privacy-policy-url", "", "privacy policy link shown by describeServer", "PDS_PRIVACY_POLICY_URL")
	f.Secret(&c.jwtSecret, "jwt-secret", "secret that signs session tokens (default: generated in DATA_DIR/keys)", "PDS_JWT_SECRET")
	f.Secret(&c.plcRotationHex, "plc-rotation-key", "hex K-256 private key that signs PLC operations (default: generated in DATA_DIR/keys)", "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX")
	f.Secret(&c.adminPassword, "admin-password", "password for admin methods (HTTP basic, user admin); unset disables them", "PDS_ADMIN_PASSWORD")
	f.String(&c.plcURL, "plc-url", "https://plc.directory", "PLC directory for did:plc accounts", "PDS_DID_PLC_URL")
	f.String(&c.corsOrigins, "cors-origins", "", "comma-separated origins allowed to call the API from browsers (default: any)", "PDSLOG_CORS_ORIGINS")
	c.blobs.register(f)
	c.proxy.register(f)
	c.firehose.register(f)
	f.Bool(&c.mirrorOn, "mirror-cloudflare", false, "also mirror the log into Cloudflare D1 and R2 (settings as for 'pdslog mirror')", "PDSLOG_MIRROR_CLOUDFLARE")
	c.mirror.register(f)
	c.backup.register(f, true)
	f.String(&c.pprofAddr, "pprof-addr", "", "serve Go's /debug/pprof on this address (e.g. localhost:6060) for profiling; off when empty", "PDSLOG_PPROF_ADDR")
	f.Bool(&c.rateLimits, "rate-limits", true, "per-account write budgets, per-IP upload limits and handle-change limits (login throttling is always on)", "PDS_RATE_LIMITS_ENABLED")
	f.String(&c.crawlers, "crawlers", "", "comma-separated relay URLs to ask for a crawl on start and after activity (at most every 20 min)", "PDS_CRAWLERS")
	f.Bool(&c.devMode, "dev-mode", false, "development mode: allow handle domains under reserved top-level domains (.test, .local, …) and proxying to local addresses", "PDS_DEV_MODE")
	f.String(&c.termsOfService, "terms-of-service-url", "", "terms of service link shown by describeServer", "PDS_TERMS_OF_SERVICE_URL")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	if err := c.firehose.validate(); err != nil {
		return err
	}
	if c.mirrorOn {
		if err := c.mirror.validate(true); err != nil {
			return err
		}
	}
	if c.backup.url != "" {
		if err := c.backup.validate("PDSLOG_BACKUP_URL", true); err != nil {
			return err
		}
	}
	logger, err := c.logger(c.stderr)
	if err != nil {
		return err
	}
	if c.pprofAddr != "" {
		stopPprof, err := servePprof(c.pprofAddr, logger)
		if err != nil {
			logger.Error("pprof not served", "err", err)
		} else {
			defer stopPprof()
		}
	}
	// The data dir is opened first, so that a data dir held by another
	// process is reported before the port is taken.
	d, err := c.openData(ctx, logger)
	if err != nil {
		return err
	}
	bind := c.bind
	if bind == "" && c.hostname == "localhost" {
		bind = "localhost"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(c.port)))
	if err != nil {
		d.close()
		return err
	}
	// The port stays open across rounds of serving: while the data dir is
	// reopened after a storage failure, connections get a 503, never a
	// refused connection.
	shared := newSharedListener(ln)
	defer shared.Close()
	ready := c.ready
	for {
		failed, err := c.serveData(ctx, d, shared, logger, ready)
		ready = nil
		if err != nil || !failed {
			return err
		}
		if d, err = c.recoverStorage(ctx, shared, logger); err != nil || d == nil {
			return err
		}
	}
}

// openData opens the data dir and brings the projections up to the log.
func (c *serveCommand) openData(ctx context.Context, logger *slog.Logger) (*dataDir, error) {
	metrics := &atomic.Pointer[api.Metrics]{}
	c.metrics = metrics
	onSync := func(n int, took time.Duration) {
		if m := metrics.Load(); m != nil {
			m.ObserveSync(n, took)
		}
	}
	d, err := openDataDir(c.dataDir, openOptions{command: "serve", seqFloor: eventlog.Seq(c.seqFloor), logger: logger, onSync: onSync, minFree: c.minFree, fs: c.logFS})
	if err != nil {
		return nil, err
	}
	if err := d.catchUp(ctx, newProgress(c.stderr, logger, "catch up")); err != nil {
		d.close()
		return nil, fmt.Errorf("catch up projections: %w", err)
	}
	return d, nil
}

// serveData serves the API over d until ctx ends, the listener fails, or
// the event log fails (failed is then true: the caller reopens the data
// dir once the disk takes writes again). It closes d before it returns.
func (c *serveCommand) serveData(ctx context.Context, d *dataDir, shared *sharedListener, logger *slog.Logger, ready chan<- string) (failed bool, err error) {
	defer d.close()
	ln := shared.round()
	metrics := c.metrics
	svc := server.Service{Hostname: c.hostname, Port: c.port, InviteRequired: c.inviteRequired,
		ContactEmail: c.contactEmail, PrivacyPolicy: c.privacyPolicy, TermsOfService: c.termsOfService, BlobUploadLimit: c.blobs.uploadLimit}
	svc.HandleDomains = server.DefaultHandleDomains(c.hostname)
	if c.handleDomains != "" {
		svc.HandleDomains = nil
		for _, d := range splitList(c.handleDomains) {
			if !strings.HasPrefix(d, ".") {
				d = "." + d
			}
			svc.HandleDomains = append(svc.HandleDomains, d)
		}
	}
	if c.port == 0 {
		svc.Port = ln.Addr().(*net.TCPAddr).Port
	}
	sec, err := loadSecrets(c.dataDir, c.jwtSecret, c.plcRotationHex)
	if err != nil {
		return false, err
	}
	tokens, err := auth.NewTokens(sec.jwt, svc.DID())
	if err != nil {
		return false, err
	}
	keys := &commit.SigningKeys{Log: d.log}
	sessions := &server.Sessions{Tokens: tokens, Accounts: d.accounts, Log: d.log, Runner: d.runner,
		Throttle: ratelimit.NewLoginThrottle(ratelimit.LoginConfig{}), Keys: keys, Blocks: d.blocks, Records: d.records}
	lex, err := lexicon.New()
	if err != nil {
		return false, fmt.Errorf("load lexicons: %w", err)
	}
	builder := commit.NewBuilder(nil)
	builder.Validator = commit.Lexicons(lex)
	metrics.Store(api.NewMetrics(d.log, d.runner))
	origins := splitList(c.corsOrigins)
	signup := &server.Signup{Service: svc, Sessions: sessions, Builder: builder, Blocks: d.blocks,
		PLC: &plc.Client{URL: c.plcURL}, RotationKey: sec.plcRotation}
	var writeLimiter *ratelimit.WriteLimiter
	var blobLimiter *ratelimit.Limiter
	if c.rateLimits {
		signup.HandleLimiter = ratelimit.NewUpdateHandleLimiter(100_000)
		writeLimiter, blobLimiter = ratelimit.NewWriteLimiter(100_000), ratelimit.NewUploadBlobLimiter(100_000)
	} else {
		logger.Warn("PDS_RATE_LIMITS_ENABLED=false: write, upload and handle-change limits are off (login throttling stays on)")
	}
	if err := firstStartInvite(ctx, d, svc, c.stdout); err != nil {
		return false, fmt.Errorf("first-start invite: %w", err)
	}
	if c.adminPassword == "" {
		logger.Warn("PDS_ADMIN_PASSWORD is not set: admin methods are disabled")
	}
	proxyCfg, err := c.proxy.config(c.plcURL, c.devMode)
	if err != nil {
		return false, err
	}
	blobStore, blobTmp, err := c.blobs.open(ctx, c.dataDir)
	if err != nil {
		return false, err
	}
	srv := api.New(api.Options{BlobStore: blobStore, BlobIndex: d.blobs, BlobTempDir: blobTmp, BlobMaxSize: c.blobs.uploadLimit,
		BlobLimiter: blobLimiter, Service: svc, Sessions: sessions, Signup: signup, AdminPassword: c.adminPassword, WriteLimiter: writeLimiter, Authenticate: sessions.Authenticate, Metrics: metrics.Load(), CORSOrigins: origins, Log: d.log, Runner: d.runner, Accounts: d.accounts, Records: d.records, Blocks: d.blocks, Repos: d.repos,
		Builder: builder, Keys: keys, Logger: logger, Version: version(), Firehose: c.firehose.options(), Proxy: proxyCfg})
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}

	runCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.runner.Run(runCtx) })
	collector := &blob.Collector{Handlers: srv.Blobs(), Grace: c.blobs.grace, Interval: c.blobs.collectEach, Logger: logger.With("component", "blob_collector")}
	wg.Go(func() { _ = collector.Run(runCtx) })
	if c.mirrorOn {
		if mr, err := c.mirror.runner(d.log, blobStore, logger); err != nil {
			logger.Error("mirror not started", "err", err)
		} else {
			wg.Go(func() { _ = mr.Run(runCtx) })
		}
	}
	c.startBackup(runCtx, &wg, d, blobStore, metrics.Load().Registry, logger)
	if crawlers := splitList(c.crawlers); len(crawlers) > 0 {
		n := &crawl.Notifier{Hostname: c.hostname, Crawlers: crawlers, Logger: logger.With("component", "crawl")}
		wg.Go(func() {
			if err := n.Run(runCtx, d.log); err != nil {
				logger.Error("crawl notifier stopped", "err", err)
			}
		})
	}
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- hs.Serve(ln) })
	logger.Info("serving", "addr", ln.Addr().String(), "hostname", c.hostname, "data_dir", c.dataDir, "seq", d.log.Head())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	logFailed := make(chan struct{})
	wg.Go(func() { watchFailure(runCtx, d.log, logFailed) })

	select {
	case <-ctx.Done():
		logger.Info("shutting down", "drain_timeout", c.drain)
		// New connections are refused from now on; those in flight drain.
		_ = shared.Close()
	case err = <-serveErr:
	case <-logFailed:
		failed = true
		logger.Error("event log failed: draining, then reopening the data dir once the disk takes writes again",
			"err", d.log.Failure(), "seq", d.log.Head())
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), c.drain)
	defer cancel()
	// Firehose websockets are hijacked, so hs.Shutdown does not wait for
	// them: they are told to go away beside it, and end before the log
	// closes.
	streamsDone := make(chan error, 1)
	go func() { streamsDone <- srv.CloseStreams(shutCtx) }()
	if serr := hs.Shutdown(shutCtx); serr != nil {
		logger.Error("shutdown", "err", serr)
	}
	if serr := <-streamsDone; serr != nil {
		logger.Error("close firehose streams", "err", serr)
	}
	stopRunner()
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return false, err
	}
	return failed, nil
}
