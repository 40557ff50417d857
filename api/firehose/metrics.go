package firehose

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Disconnect reasons, the label values of pdslog_firehose_disconnects_total
// and the "reason" of the disconnect log line.
const (
	ReasonClientClosed   = "client_closed"   // the client closed or dropped the connection
	ReasonTooSlowLag     = "too_slow_lag"    // fell more than MaxLag events behind after catching up
	ReasonTooSlowWrite   = "too_slow_write"  // a write did not complete within WriteTimeout
	ReasonPingTimeout    = "ping_timeout"    // an idle client did not answer a ping in time
	ReasonFutureCursor   = "future_cursor"   // asked for a cursor past the head
	ReasonInvalidRequest = "invalid_request" // bad parameters
	ReasonShutdown       = "shutdown"        // the server is going away
	ReasonError          = "error"           // reading the log or writing failed otherwise
)

var reasons = []string{ReasonClientClosed, ReasonTooSlowLag, ReasonTooSlowWrite, ReasonPingTimeout,
	ReasonFutureCursor, ReasonInvalidRequest, ReasonShutdown, ReasonError}

type metrics struct {
	subscribers prometheus.Gauge
	frames      prometheus.Counter
	bytes       prometheus.Counter
	encodes     prometheus.Counter
	encodeErrs  prometheus.Counter
	disconnects *prometheus.CounterVec
	ringFrames  prometheus.Counter
	logReads    prometheus.Counter
	ringResets  prometheus.Counter
}

func newMetrics(h *Handler, reg prometheus.Registerer) *metrics {
	m := &metrics{
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pdslog_firehose_subscribers", Help: "Connected subscribeRepos subscribers."}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pdslog_firehose_frames_sent_total", Help: "Frames written to subscribeRepos subscribers (event, info and error frames)."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pdslog_firehose_bytes_sent_total", Help: "Frame bytes written to subscribeRepos subscribers."}),
		encodes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pdslog_firehose_frame_encodes_total", Help: "Events encoded into frames (cache misses)."}),
		encodeErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pdslog_firehose_frame_encode_errors_total", Help: "Public events that could not be encoded and were skipped."}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdslog_firehose_disconnects_total", Help: "subscribeRepos disconnects by reason."}, []string{"reason"}),
		ringFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pdslog_firehose_ring_frames_total", Help: "Event frames subscribers took from the shared tail's ring."}),
		logReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pdslog_firehose_log_reads_total", Help: "Passes over the log by subscribers the shared tail's ring could not serve (replaying or behind it)."}),
		ringResets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pdslog_firehose_ring_resets_total", Help: "Times the shared tail's ring was emptied because the log purged events."}),
	}
	for _, r := range reasons {
		m.disconnects.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.subscribers, m.frames, m.bytes, m.encodes, m.encodeErrs, m.disconnects, m.ringFrames, m.logReads, m.ringResets,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pdslog_firehose_max_subscriber_lag_events",
				Help: "Events the furthest-behind subscribeRepos subscriber is behind the log head."},
				func() float64 { return float64(h.maxLag()) }))
	}
	return m
}
