package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/netguard"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog"
)

// serveCommand is `pdslog serve`: its fields are the raw settings (flags
// and their environment fallbacks); config turns them into a validated
// serveConfig once, before anything is opened.
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
	metricsAddr    string
	net            netSettings
	blobs          blobSettings
	proxy          proxySettings
	firehose       firehoseSettings
	mirrorOn       bool
	mirror         mirrorSettings
	backup         backupSettings
	email          emailSettings
	acceptImports  bool
	maxImportSize  int64

	// current is the server of the round being served (nil while the
	// data dir is reopened), for the metrics listener.
	current atomic.Pointer[api.Server]

	// ready, if set, receives the listening address (tests).
	ready chan<- string
	// logFS, if set, is the filesystem the event log runs on (tests inject
	// faults through it); nil means the OS filesystem.
	logFS vfs.FS
}

const serveSummary = `Run the PDS. With no flags it serves http://localhost:2583 from ./data.`

func (c *serveCommand) register(f *flags) {
	c.common.register(f)
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
	c.email.register(f)
	f.Bool(&c.acceptImports, "accepting-repo-imports", true, "accept com.atproto.repo.importRepo (accounts migrating here)", "PDS_ACCEPTING_REPO_IMPORTS")
	f.Int64(&c.maxImportSize, "max-repo-import-size", pds.DefaultMaxImportSize, "largest repo CAR importRepo accepts, in bytes", "PDS_MAX_REPO_IMPORT_SIZE")
	c.proxy.register(f)
	c.firehose.register(f)
	f.Bool(&c.mirrorOn, "mirror-cloudflare", false, "also mirror the log into Cloudflare D1 and R2 (settings as for 'pdslog mirror')", "PDSLOG_MIRROR_CLOUDFLARE")
	c.mirror.register(f)
	c.backup.register(f, true)
	f.String(&c.pprofAddr, "pprof-addr", "", "serve Go's /debug/pprof on this address (e.g. localhost:6060) for profiling; off when empty", "PDSLOG_PPROF_ADDR")
	f.String(&c.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this address (e.g. localhost:9090), never on the public port; off when empty", "PDSLOG_METRICS_ADDR")
	f.Bool(&c.rateLimits, "rate-limits", true, "per-address limits (requests, createAccount, uploads, connections, firehose subscriptions), per-account write budgets and handle-change limits; false for load tests (login and admin password throttling stay on)", "PDS_RATE_LIMITS_ENABLED")
	c.net.register(f)
	f.String(&c.crawlers, "crawlers", "", "comma-separated relay URLs to ask for a crawl on start and after activity (at most every 20 min)", "PDS_CRAWLERS")
	f.Bool(&c.devMode, "dev-mode", false, "development mode: allow handle domains under reserved top-level domains (.test, .local, …) and proxying to local addresses", "PDS_DEV_MODE")
	f.String(&c.termsOfService, "terms-of-service-url", "", "terms of service link shown by describeServer", "PDS_TERMS_OF_SERVICE_URL")
}

// run is parse → config → build → serve → close. Serving goes in rounds:
// after a storage failure the data dir is reopened (a new round) on the
// same port.
func (c *serveCommand) run(ctx context.Context, args []string) error {
	f := newFlags("serve", serveSummary, c.stderr)
	c.register(f)
	if err := f.parse(args); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	logger, err := c.logger(c.stderr)
	if err != nil {
		return err
	}
	if cfg.pprofAddr != "" {
		stopPprof, err := servePprof(cfg.pprofAddr, logger)
		if err != nil {
			logger.Error("pprof not served", "err", err)
		} else {
			defer stopPprof()
		}
	}
	// The network counters outlive a round: the listener is shared.
	netm := api.NewNetMetrics()
	cfg.api.Net = netm
	if cfg.metricsAddr != "" {
		_, stopMetrics, err := serveMetrics(cfg.metricsAddr, logger, c.current.Load)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	store, err := cfg.blobs.open(ctx, cfg.dataDir)
	if err != nil {
		return err
	}
	cfg.pds.BlobStore = store
	// The data dir is opened first, so that a data dir held by another
	// process is reported before the port is taken.
	r, err := c.openRound(ctx, cfg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.listenAddr)
	if err != nil {
		r.close()
		return err
	}
	if cfg.pds.Service.Port == 0 {
		// --port 0 (tests): the public URL names the port the kernel chose,
		// for this round (built before the port was taken) and later ones.
		cfg.pds.Service.Port = ln.Addr().(*net.TCPAddr).Port
		r.pds.Service.Port = cfg.pds.Service.Port
	}
	ln = netguard.LimitListener(ln, cfg.maxConnsPerIP, cfg.api.TrustedProxies, func() { netm.Refused(api.RefusedConnPerAddress) })
	// The port stays open across rounds of serving: while the data dir is
	// reopened after a storage failure, connections get a 503, never a
	// refused connection.
	shared := newSharedListener(ln, logger, netm.AcceptError)
	defer shared.Close()
	ready := c.ready
	for {
		failed, err := r.serve(ctx, shared, ready)
		ready = nil
		if err != nil || !failed {
			return err
		}
		if r, err = c.recoverStorage(ctx, cfg, shared, logger); err != nil || r == nil {
			return err
		}
	}
}

// openRound opens the data dir, brings the projections up to the log and
// builds the server over it.
func (c *serveCommand) openRound(ctx context.Context, cfg *serveConfig, logger *slog.Logger) (*round, error) {
	r, err := buildRound(ctx, cfg, logger, c.stdout, newProgress(c.stderr, logger, "catch up"))
	if err != nil {
		return nil, fmt.Errorf("open data dir: %w", err)
	}
	c.current.Store(r.srv)
	return r, nil
}
