package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pdslog/pdslog/api/actor"
	"github.com/pdslog/pdslog/api/blob"
	"github.com/pdslog/pdslog/api/firehose"
	"github.com/pdslog/pdslog/api/identity"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/repo"
	"github.com/pdslog/pdslog/api/server"
	syncapi "github.com/pdslog/pdslog/api/sync"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
	"github.com/pdslog/pdslog/projections/blocks"
	"github.com/pdslog/pdslog/projections/records"
	"github.com/pdslog/pdslog/projections/repos"
)

// Options are the server's collaborators.
type Options struct {
	Log      *eventlog.Log
	Runner   *projections.Runner
	Accounts *accounts.Projection
	Records  *records.Projection
	Blocks   *blocks.Projection
	Repos    *repos.Projection // with Log, Runner and Blocks: the com.atproto.sync reads
	Builder  *commit.Builder
	Keys     *commit.SigningKeys
	Service  server.Service
	// Sessions, if set, serves the session methods.
	Sessions *server.Sessions
	// Signup, if set, serves createAccount.
	Signup *server.Signup
	// WriteLimiter, if set, enforces per-account write budgets.
	WriteLimiter *ratelimit.WriteLimiter
	// AdminPassword enables com.atproto.admin.* (HTTP basic admin:PASSWORD).
	AdminPassword string
	// Authenticate verifies a request's credentials and returns the caller;
	// it is called only for requests that carry an Authorization header.
	Authenticate func(c echo.Context) (*xrpc.Caller, error)
	Logger       *slog.Logger // nil means slog.Default()
	Version      string
	// Metrics, if set, are served at /metrics and fed by every request.
	Metrics *Metrics
	// CORSOrigins limits cross-origin requests to these origins; empty
	// means any origin, as the reference PDS allows.
	CORSOrigins []string
	// BlobStore and BlobIndex, if set, serve blobs (uploadBlob, getBlob,
	// listBlobs, listMissingBlobs) and make record writes check their
	// blob references.
	BlobStore   blobstore.Store
	BlobIndex   *blobs.Projection
	BlobTempDir string             // upload temp files; "" means os.TempDir()
	BlobMaxSize int64              // 0 means blob.DefaultMaxSize
	BlobLimiter *ratelimit.Limiter // uploads per client IP
	// Proxy, if set, forwards the XRPC methods nothing here serves (by
	// atproto-proxy header or default route) and serves read-after-write.
	Proxy *proxy.Config
	// Firehose configures com.atproto.sync.subscribeRepos; its Log, Logger
	// and Registerer default to the server's.
	Firehose firehose.Options
}

// Server is the HTTP server.
type Server struct {
	opts     Options
	metrics  *Metrics
	e        *echo.Echo
	repo     *repo.Handlers
	server   *server.Handlers
	identity *identity.Handlers
	blob     *blob.Handlers
	proxy    *proxy.Proxy
	actor    *actor.Handlers
	firehose *firehose.Handler
	sync     *syncapi.Handlers
}

// Blobs returns the blob handlers (for the collector), or nil when blobs
// are not served.
func (s *Server) Blobs() *blob.Handlers { return s.blob }

// New builds the server and its route table.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = xrpc.ErrorHandler(opts.Logger)
	s := &Server{opts: opts, e: e, metrics: opts.Metrics}
	e.Use(s.observe)
	// No AllowHeaders: a preflight is allowed the headers it asks for, as
	// the reference's cors() does. "*" there would not cover Authorization
	// (Fetch standard), and browsers would refuse every authenticated call.
	e.Use(middleware.CORSWithConfig(middleware.CORSConfig{AllowOrigins: corsOrigins(opts.CORSOrigins),
		ExposeHeaders: []string{"*"}, MaxAge: 86400}))
	e.Use(s.authenticate)
	s.repo = &repo.Handlers{
		PublicURL: opts.Service.PublicURL(),
		Writer: &repo.Writer{Log: opts.Log, Runner: opts.Runner, Blocks: opts.Blocks, Accounts: opts.Accounts, Builder: opts.Builder, Keys: opts.Keys,
			Limiter: opts.WriteLimiter},
		Records:  opts.Records,
		Accounts: opts.Accounts,
	}
	if opts.BlobStore != nil && opts.BlobIndex != nil {
		s.repo.Writer.Blobs = opts.BlobIndex
		s.blob = &blob.Handlers{Store: opts.BlobStore, Index: opts.BlobIndex, Accounts: opts.Accounts, Writer: s.repo.Writer,
			Log: opts.Log, Runner: opts.Runner, TempDir: opts.BlobTempDir, MaxSize: opts.BlobMaxSize, Limiter: opts.BlobLimiter}
	}
	s.server = &server.Handlers{Service: opts.Service, Accounts: opts.Accounts}
	s.identity = &identity.Handlers{Accounts: opts.Accounts}
	if opts.Proxy != nil {
		s.proxy = proxy.New(*opts.Proxy, proxy.Deps{Log: opts.Log, Runner: opts.Runner, Accounts: opts.Accounts, Records: opts.Records,
			Keys: opts.Keys, PublicURL: opts.Service.PublicURL(), Logger: opts.Logger.With("component", "proxy")})
	}
	s.actor = &actor.Handlers{Log: opts.Log, Runner: opts.Runner, Accounts: opts.Accounts, Proxy: s.proxy}
	fo := opts.Firehose
	if fo.Log == nil {
		fo.Log = opts.Log
	}
	if fo.Logger == nil {
		fo.Logger = opts.Logger
	}
	if fo.Registerer == nil && opts.Metrics != nil {
		fo.Registerer = opts.Metrics.Registry
	}
	if fo.Log != nil {
		s.firehose = firehose.New(&fo)
	}
	if opts.Repos != nil && opts.Blocks != nil && opts.Log != nil && opts.Runner != nil {
		s.sync = &syncapi.Handlers{Log: opts.Log, Runner: opts.Runner, Repos: opts.Repos, Blocks: opts.Blocks,
			AdminPassword: opts.AdminPassword, Logger: opts.Logger}
		if s.blob != nil {
			s.blob.RepoGate = s.sync.Gate
		}
	}
	s.routes()
	return s
}

// authenticate records the caller of requests that carry credentials; bad
// credentials are refused here, before any handler runs.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// Sync reads check their own basic (admin) credentials.
		if c.Request().Header.Get(echo.HeaderAuthorization) == "" || s.opts.Authenticate == nil || syncapi.OwnsCredentials(c.Request()) {
			return next(c)
		}
		caller, err := s.opts.Authenticate(c)
		if err != nil {
			return err
		}
		if caller != nil {
			xrpc.SetCaller(c, caller)
		}
		return next(c)
	}
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.e }

// healthOutput is the body of /xrpc/_health.
type healthOutput struct {
	Version string `json:"version"`
}

// health answers /xrpc/_health: 200 with the version while the log accepts
// writes and projections answer, 503 otherwise.
func (s *Server) health(c echo.Context) error {
	if err := s.opts.Log.Failure(); err != nil {
		return &xrpc.Error{Status: http.StatusServiceUnavailable, Name: "ServiceUnavailable", Message: "event log is not accepting writes", Err: err}
	}
	if _, err := s.opts.Runner.Status(c.Request().Context()); err != nil {
		return &xrpc.Error{Status: http.StatusServiceUnavailable, Name: "ServiceUnavailable", Message: "projections are not answering", Err: err}
	}
	return c.JSON(http.StatusOK, healthOutput{Version: s.opts.Version})
}

// ready answers /ready: 200 once every projection has caught up with the
// log, 503 with the lag otherwise.
func (s *Server) ready(c echo.Context) error {
	st, err := s.opts.Runner.Status(c.Request().Context())
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
	if s.firehose == nil {
		return nil
	}
	return s.firehose.Shutdown(ctx)
}

func corsOrigins(o []string) []string {
	if len(o) == 0 {
		return []string{"*"}
	}
	return o
}

// metricsHandler serves /metrics (404 without metrics).
func (s *Server) metricsHandler(c echo.Context) error {
	if s.metrics == nil {
		return echo.ErrNotFound
	}
	promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}).ServeHTTP(c.Response(), c.Request())
	return nil
}
