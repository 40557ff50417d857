package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pdslog/pdslog/api/netguard"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections"
)

// Metrics are the server's Prometheus metrics.
type Metrics struct {
	Registry    *prometheus.Registry
	requests    *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	syncBatch   prometheus.Histogram
	syncSeconds prometheus.Histogram
}

// NewMetrics registers the metrics of a server over log and runner.
func NewMetrics(log *eventlog.Log, runner *projections.Runner) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "pdslog_http_request_duration_seconds", Help: "HTTP requests by XRPC method (or path) and status.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"method", "status"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pdslog_xrpc_errors_total", Help: "XRPC error responses by error name.",
	}, []string{"error"})
	m.syncBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "pdslog_log_sync_events", Help: "Events made durable per log group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	m.syncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "pdslog_log_append_seconds", Help: "Time from group build to durable (WAL synced) per group commit.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	m.Registry.MustRegister(m.requests, m.errors, m.syncBatch, m.syncSeconds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pdslog_log_head_seq", Help: "Last durable seq of the event log."},
			func() float64 { return float64(log.Head()) }),
		&lagCollector{runner: runner, desc: prometheus.NewDesc("pdslog_projection_lag_events",
			"Events a projection is behind the log.", []string{"projection"}, nil)},
	)
	return m
}

// observeMail exports the mail outbox's counters (st nil: no email).
func (m *Metrics) observeMail(st *pds.MailStats) {
	if st == nil {
		return
	}
	for _, c := range []struct {
		name, help string
		v          *atomic.Int64
	}{
		{"pdslog_mail_sent_total", "Emails the SMTP server accepted.", &st.Sent},
		{"pdslog_mail_retries_total", "Email deliveries that failed and were retried.", &st.Retried},
		{"pdslog_mail_failed_total", "Emails given up on after their retries (or refused for good, or dropped from a full outbox).", &st.Failed},
	} {
		v := c.v
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 { return float64(v.Load()) }))
	}
}

// ObserveSync records a group commit (eventlog.Options.OnSync).
func (m *Metrics) ObserveSync(events int, took time.Duration) {
	m.syncBatch.Observe(float64(events))
	m.syncSeconds.Observe(took.Seconds())
}

type lagCollector struct {
	runner *projections.Runner
	desc   *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.runner.Status(context.Background())
	if err != nil {
		return
	}
	for _, s := range st {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(s.Lag()), s.Name)
	}
}

// methodLabel is the XRPC method for /xrpc/ paths (bounded: unknown
// methods collapse into "other"), else the route path.
func methodLabel(c echo.Context) string {
	if nsid, ok := strings.CutPrefix(c.Request().URL.Path, "/xrpc/"); ok {
		if c.Path() == "/xrpc/:nsid" {
			return "other"
		}
		return nsid
	}
	if p := c.Path(); p != "" {
		return p
	}
	return "other"
}

// observe logs each request (request id, method, status, duration) and
// records its metrics. It must wrap the error handler's output, so it calls
// it itself for handler errors.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		method := methodLabel(c)
		took := time.Since(start)
		if s.metrics != nil {
			s.metrics.requests.WithLabelValues(method, strconv.Itoa(status)).Observe(took.Seconds())
			if status >= 400 {
				var xe *xrpc.Error
				name := strconv.Itoa(status)
				if errors.As(err, &xe) {
					name = xe.Name
				}
				s.metrics.errors.WithLabelValues(name).Inc()
			}
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		req := c.Request()
		attrs := []slog.Attr{slog.String("request_id", id), slog.String("http_method", req.Method),
			slog.String("method", method), slog.Int("status", status), slog.Duration("duration", took),
			// remote_ip is the client as limits see it: the connection's
			// address unless that is a trusted proxy (TrustedProxies); the
			// peer and what forwarding headers claimed are logged apart.
			slog.String("remote_ip", c.RealIP()), slog.String("peer", netguard.Peer(req))}
		if v := req.Header.Values(echo.HeaderXForwardedFor); len(v) > 0 {
			attrs = append(attrs, slog.String("x_forwarded_for", clip(strings.Join(v, ", "))))
		}
		if v := req.Header.Get(echo.HeaderXRealIP); v != "" {
			attrs = append(attrs, slog.String("x_real_ip", clip(v)))
		}
		s.cfg.Logger.LogAttrs(req.Context(), level, "request", attrs...)
		return nil
	}
}

// clip bounds a client-sent header value in a log line.
func clip(v string) string {
	const n = 256
	if len(v) <= n {
		return v
	}
	return v[:n] + "…"
}

// Reasons the server refuses a connection or a request to protect itself
// (label reason of pdslog_refused_total).
const (
	RefusedConnPerAddress     = "conn_per_address"     // over the per-address connection cap
	RefusedBodyTooLarge       = "body_too_large"       // declared Content-Length over the route's limit
	RefusedBodyTimeout        = "body_timeout"         // body not in before the route's deadline
	RefusedRateGlobal         = "rate_global"          // the global per-address request limit
	RefusedRateCreateAccount  = "rate_create_account"  // createAccount's per-address limit
	RefusedAdminAuth          = "admin_auth_throttled" // too many failed admin passwords from the address
	RefusedFirehosePerAddress = "firehose_per_address" // over the per-address firehose subscriber cap
)

var refusedReasons = []string{RefusedConnPerAddress, RefusedBodyTooLarge, RefusedBodyTimeout, RefusedRateGlobal,
	RefusedRateCreateAccount, RefusedAdminAuth, RefusedFirehosePerAddress}

// NetMetrics count what the server refused to protect itself, by reason,
// and the listener's failed Accepts. They outlive a round of serving (the
// listener is shared across rounds), so serve makes them once and every
// round's registry reports them.
type NetMetrics struct {
	refused      *prometheus.CounterVec
	acceptErrors prometheus.Counter
}

// NewNetMetrics returns the counters, every reason at zero.
func NewNetMetrics() *NetMetrics {
	n := &NetMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdslog_refused_total", Help: "Connections and requests refused to protect the server, by reason.",
		}, []string{"reason"}),
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pdslog_accept_errors_total", Help: "Failed accepts on the listener (retried with backoff), e.g. out of file descriptors.",
		}),
	}
	for _, r := range refusedReasons {
		n.refused.WithLabelValues(r)
	}
	return n
}

// Refused counts one refusal for reason.
func (n *NetMetrics) Refused(reason string) { n.refused.WithLabelValues(reason).Inc() }

// AcceptError counts one failed Accept.
func (n *NetMetrics) AcceptError() { n.acceptErrors.Inc() }
