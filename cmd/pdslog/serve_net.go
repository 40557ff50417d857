package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/netguard"
)

// What keeps one client from taking the server down: connection, header
// and body limits, and which proxies' forwarding headers are believed.

const (
	// readHeaderTimeout bounds how long a request's headers may take
	// (slowloris); the body has its own deadline per route.
	readHeaderTimeout = 10 * time.Second
	// maxHeaderBytes bounds a request's headers (net/http adds 4 KiB of
	// slack): twice Node's 16 KiB, which the reference PDS runs with; a
	// session token is ~1 KiB.
	maxHeaderBytes = 32 << 10
	// defaultIdleTimeout is how long a keep-alive connection may sit idle
	// between requests: the reference PDS's 90 s (longer than the usual
	// load balancer's 60 s, so the proxy closes first).
	defaultIdleTimeout = 90 * time.Second
	// defaultMaxConnsPerIP caps one address's open connections. Browsers
	// open 6 per host; a NAT shares one address between many users; a
	// relay or AppView holds a few. Idle ones go after the idle timeout.
	defaultMaxConnsPerIP = 256
)

// netSettings are serve's network limits.
type netSettings struct {
	trustedProxies string
	idleTimeout    time.Duration
	bodyTimeout    time.Duration
	uploadTimeout  time.Duration
	maxConnsPerIP  int
}

func (s *netSettings) register(f *flags) {
	f.String(&s.trustedProxies, "trusted-proxies", "",
		"comma-separated CIDRs of reverse proxies whose X-Forwarded-For/X-Real-IP name the client (default: none, the connection's address is the client's)",
		"PDSLOG_TRUSTED_PROXIES")
	f.Duration(&s.idleTimeout, "idle-timeout", defaultIdleTimeout, "how long a keep-alive connection may sit idle between requests", "PDSLOG_IDLE_TIMEOUT")
	f.Duration(&s.bodyTimeout, "body-timeout", api.DefaultBodyTimeout,
		"how long a JSON request body may take to arrive (slower ones get 408 and the connection is closed)", "PDSLOG_BODY_TIMEOUT")
	f.Duration(&s.uploadTimeout, "upload-timeout", api.DefaultUploadTimeout, "how long a blob upload's body may take to arrive", "PDSLOG_UPLOAD_TIMEOUT")
	f.Int(&s.maxConnsPerIP, "max-conns-per-ip", defaultMaxConnsPerIP,
		"open connections one client address (IPv4 address, IPv6 /64) may hold; more are closed on accept; trusted proxies are exempt (0: no cap)",
		"PDSLOG_MAX_CONNS_PER_IP")
}

// config checks the settings.
func (s *netSettings) config() (trusted []netip.Prefix, err error) {
	bad := func(env, format string, args ...any) error {
		return usageError{fmt.Sprintf("%s: %s", env, fmt.Sprintf(format, args...))}
	}
	if trusted, err = netguard.ParseTrustedProxies(s.trustedProxies); err != nil {
		return nil, bad("PDSLOG_TRUSTED_PROXIES", "%v", err)
	}
	for _, d := range []struct {
		env string
		d   time.Duration
	}{{"PDSLOG_IDLE_TIMEOUT", s.idleTimeout}, {"PDSLOG_BODY_TIMEOUT", s.bodyTimeout}, {"PDSLOG_UPLOAD_TIMEOUT", s.uploadTimeout}} {
		if d.d <= 0 {
			return nil, bad(d.env, "must be positive, got %s", d.d)
		}
	}
	if s.maxConnsPerIP < 0 {
		return nil, bad("PDSLOG_MAX_CONNS_PER_IP", "must not be negative, got %d", s.maxConnsPerIP)
	}
	return trusted, nil
}

// httpServer is the http.Server for h with serve's limits.
func (cfg *serveConfig) httpServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: cfg.idleTimeout, MaxHeaderBytes: maxHeaderBytes}
}

// serveMetrics serves Prometheus /metrics on its own listener, never on
// the PDS's public port: the current round's server's metrics, 503 while
// the data dir is being reopened. It returns the bound address and a func
// that stops it.
func serveMetrics(addr string, logger *slog.Logger, current func() *api.Server) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics listener (PDSLOG_METRICS_ADDR): %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		srv := current()
		if srv == nil {
			http.Error(w, "the server is reopening its data dir", http.StatusServiceUnavailable)
			return
		}
		srv.MetricsHandler().ServeHTTP(w, r)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	go func() { _ = hs.Serve(ln) }()
	logger.Info("metrics serving", "addr", ln.Addr().String())
	return ln.Addr().String(), func() { _ = hs.Close() }, nil
}
