package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pdslog/pdslog/api/actor"
	"github.com/pdslog/pdslog/api/blob"
	"github.com/pdslog/pdslog/api/firehose"
	"github.com/pdslog/pdslog/api/identity"
	"github.com/pdslog/pdslog/api/netguard"
	"github.com/pdslog/pdslog/api/oauth"
	"github.com/pdslog/pdslog/api/pds"
	pdsidentity "github.com/pdslog/pdslog/api/pds/identity"
	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/repo"
	"github.com/pdslog/pdslog/api/server"
	syncapi "github.com/pdslog/pdslog/api/sync"
	"github.com/pdslog/pdslog/api/xrpc"
)

// Config is the HTTP server's settings: data, validated by whoever built
// it (serve's flags, the test environment).
type Config struct {
	// AdminPassword enables com.atproto.admin.* and the admin-only server
	// methods (HTTP basic admin:PASSWORD); "" disables them.
	AdminPassword string
	// CORSOrigins limits cross-origin requests to these origins; empty
	// means any origin, as the reference PDS allows.
	CORSOrigins []string
	// RateLimits turns on the per-address request limits (the global
	// 3000 per 5 minutes, createAccount's 100 per 5 minutes, uploads),
	// per-account write budgets and handle-change limits. Login and admin
	// password throttling are always on.
	RateLimits bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For (or
	// X-Real-IP) names the client; empty means none: every limit and log
	// line uses the connection's address (netguard.Extractor).
	TrustedProxies []netip.Prefix
	// BodyTimeout is how long a request body may take to arrive once the
	// headers are in (JSON procedures, proxied calls, a stray body on a
	// query); 0 means DefaultBodyTimeout.
	BodyTimeout time.Duration
	// UploadTimeout is the same for blob uploads; 0 means
	// DefaultUploadTimeout.
	UploadTimeout time.Duration
	// Net counts refusals and failed accepts; nil means the server makes
	// its own. serve makes one for the process and shares it with its
	// listener, whose refusals outlive a round of serving.
	Net *NetMetrics
	// BlobTempDir holds uploads while they stream in; "" means
	// os.TempDir().
	BlobTempDir string
	// BlobMaxSize is the largest upload accepted; 0 means
	// blob.DefaultMaxSize.
	BlobMaxSize int64
	// MaxImportSize bounds an importRepo body (PDS_MAX_REPO_IMPORT_SIZE);
	// 0 means pds.DefaultMaxImportSize.
	MaxImportSize int64
	// Proxy, if set, forwards the XRPC methods nothing here serves (by
	// atproto-proxy header or default route) and serves read-after-write.
	Proxy *proxy.Config
	// HandleResolver, if set, resolves handles hosted elsewhere for
	// resolveHandle; nil: one built from Proxy's settings (handles.go).
	HandleResolver *pdsidentity.HandleResolver
	// Firehose configures com.atproto.sync.subscribeRepos; its Log, Logger
	// and Registerer are the server's.
	Firehose firehose.Options
	Logger   *slog.Logger // nil means slog.Default()
	Version  string
	// OAuth configures the OAuth authorization server and its pages
	// (api/oauth); its Throttle, Logger and Registerer are the server's.
	OAuth oauth.Config
}

// Server is the HTTP server over a PDS.
type Server struct {
	pds      *pds.PDS
	cfg      Config
	metrics  *Metrics
	net      *NetMetrics
	limits   limits
	e        *echo.Echo
	repo     *repo.Handlers
	server   *server.Handlers
	identity *identity.Handlers
	blob     *blob.Handlers
	proxy    *proxy.Proxy
	actor    *actor.Handlers
	firehose *firehose.Handler
	sync     *syncapi.Handlers
	oauth    *oauth.Handlers
}

// New builds the HTTP server over p: every handler, the route table and
// the middleware its auth policies need. It is the one composition root:
// serve and the test environment both build through it.
func New(p *pds.PDS, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = DefaultUploadTimeout
	}
	if cfg.Net == nil {
		cfg.Net = NewNetMetrics()
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = xrpc.ErrorHandler(cfg.Logger)
	// Without an extractor echo believes X-Forwarded-For and X-Real-IP from
	// anyone.
	e.IPExtractor = netguard.Extractor(cfg.TrustedProxies)
	s := &Server{pds: p, cfg: cfg, e: e, metrics: NewMetrics(p.Log, p.Runner), net: cfg.Net}
	s.metrics.observeMail(p.MailStats())
	s.metrics.Registry.MustRegister(cfg.Net.refused, cfg.Net.acceptErrors)
	s.limits = newLimits(cfg.RateLimits)
	e.Use(s.observe)
	// No AllowHeaders: a preflight is allowed the headers it asks for, as
	// the reference's cors() does. "*" there would not cover Authorization
	// (Fetch standard), and browsers would refuse every authenticated call.
	e.Use(middleware.CORSWithConfig(middleware.CORSConfig{AllowOrigins: corsOrigins(cfg.CORSOrigins),
		ExposeHeaders: []string{"*"}, MaxAge: 86400}))

	var writes *ratelimit.WriteLimiter
	var uploads, handles *ratelimit.Limiter
	if cfg.RateLimits {
		writes = ratelimit.NewWriteLimiter(ratelimit.DefaultMaxKeys)
		uploads = ratelimit.NewUploadBlobLimiter(ratelimit.DefaultMaxKeys)
		handles = ratelimit.NewUpdateHandleLimiter(ratelimit.DefaultMaxKeys)
	}
	s.sync = &syncapi.Handlers{PDS: p, AdminPassword: cfg.AdminPassword, Logger: cfg.Logger}
	s.repo = &repo.Handlers{PDS: p, Limiter: writes, MaxImportSize: cfg.MaxImportSize, Privileged: s.sync.Privileged}
	s.server = &server.Handlers{PDS: p, Throttle: ratelimit.NewLoginThrottle(ratelimit.LoginConfig{})}
	if cfg.RateLimits {
		s.server.EmailRequests = ratelimit.NewLimiter(ratelimit.DefaultMaxKeys, ratelimit.LimitEmailRequestDay, ratelimit.LimitEmailRequestHour)
		s.server.PasswordResets = ratelimit.NewLimiter(ratelimit.DefaultMaxKeys, ratelimit.LimitPasswordResetDay, ratelimit.LimitPasswordResetHour)
		s.server.TokenUses = ratelimit.NewLimiter(ratelimit.DefaultMaxKeys, ratelimit.LimitTokenUse5Min)
	}
	s.identity = &identity.Handlers{PDS: p, HandleLimiter: handles, Privileged: s.sync.Privileged, Foreign: foreignHandles(cfg)}
	s.blob = &blob.Handlers{PDS: p, TempDir: cfg.BlobTempDir, MaxSize: cfg.BlobMaxSize, Limiter: uploads, RepoGate: s.sync.Gate}
	if cfg.Proxy != nil {
		s.proxy = proxy.New(*cfg.Proxy, proxy.Deps{PDS: p, Logger: cfg.Logger.With("component", "proxy")})
		s.repo.Elsewhere = s.proxy
	}
	s.actor = &actor.Handlers{PDS: p, Proxy: s.proxy}
	fo := cfg.Firehose
	fo.Log, fo.Logger, fo.Registerer = p.Log, cfg.Logger, s.metrics.Registry
	fo.OnRefuse = func() { s.net.Refused(RefusedFirehosePerAddress) }
	s.firehose = firehose.New(&fo)
	s.oauth = s.newOAuth()
	s.route()
	return s
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.e }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// healthOutput is the body of /xrpc/_health.
type healthOutput struct {
	Version string `json:"version"`
}

// health answers /xrpc/_health: 200 with the version while the log accepts
// writes and projections answer, 503 otherwise.
func (s *Server) health(c echo.Context) error {
	if err := s.pds.Log.Failure(); err != nil {
		return &xrpc.Error{Status: http.StatusServiceUnavailable, Name: "ServiceUnavailable", Message: "event log is not accepting writes", Err: err}
	}
	if _, err := s.pds.Runner.Status(c.Request().Context()); err != nil {
		return &xrpc.Error{Status: http.StatusServiceUnavailable, Name: "ServiceUnavailable", Message: "projections are not answering", Err: err}
	}
	return c.JSON(http.StatusOK, healthOutput{Version: s.cfg.Version})
}

// ready answers /ready: 200 once every projection has caught up with the
// log, 503 with the lag otherwise.
func (s *Server) ready(c echo.Context) error {
	st, err := s.pds.Runner.Status(c.Request().Context())
	if err != nil {
		return err
	}
	var lag uint64
	for _, p := range st {
		lag = max(lag, p.Lag())
	}
	if lag > 0 {
		return &xrpc.Error{Status: http.StatusServiceUnavailable, Name: "NotReady", Message: "projections are catching up with the log"}
	}
	return c.JSON(http.StatusOK, map[string]any{"ready": true})
}

// notImplemented answers XRPC methods nothing here serves: the proxy
// forwards them when it has somewhere to, else 501.
func (s *Server) notImplemented(c echo.Context) error {
	if s.proxy != nil {
		return s.proxy.Handle(c)
	}
	return xrpc.MethodNotImplemented(c.Param("nsid"))
}

// Shutdown stops accepting requests and waits for in-flight ones.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.e.Shutdown(ctx)
	if ferr := s.CloseStreams(ctx); err == nil {
		err = ferr
	}
	return err
}

// CloseStreams tells firehose subscribers the server is going away and
// waits for them to end (until ctx ends). http.Server.Shutdown does not
// wait for hijacked websockets, so whoever shuts the server down calls
// this beside it.
func (s *Server) CloseStreams(ctx context.Context) error {
	return s.firehose.Shutdown(ctx)
}

// CleanUploads removes upload temp files a crash left behind.
func (s *Server) CleanUploads() error { return blob.CleanTemp(s.cfg.BlobTempDir) }

func corsOrigins(o []string) []string {
	if len(o) == 0 {
		return []string{"*"}
	}
	return o
}

// MetricsHandler serves the server's Prometheus metrics. It is not on
// the public listener (the metrics describe the server's accounts and
// load): serve offers it on its operator listener (--metrics-addr).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
}

// now is the clock tokens are verified at.
func (s *Server) now() time.Time { return s.pds.Now() }
