package backup

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the shipper's Prometheus collectors.
type metrics struct {
	events, segments, segmentBytes, manifests, blobs, blobBytes, errors prometheus.Counter
	shipLag                                                             prometheus.Histogram
}

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "pdslog_backup_" + name, Help: help})
	}
	return &metrics{
		events:       c("events_total", "Events shipped to the backup."),
		segments:     c("segments_total", "Segment objects uploaded."),
		segmentBytes: c("segment_bytes_total", "Bytes of segment objects uploaded."),
		manifests:    c("manifest_writes_total", "Manifest writes."),
		blobs:        c("blobs_total", "Blobs copied to the backup (not counting those already there)."),
		blobBytes:    c("blob_bytes_total", "Bytes of blobs copied to the backup."),
		errors:       c("upload_errors_total", "Failed backup requests (each retried with backoff)."),
		shipLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pdslog_backup_ship_lag_seconds", Help: "Per event: from its append to its segment's upload acknowledged.",
			Buckets: prometheus.ExponentialBuckets(0.01, 1.5, 24),
		}),
	}
}

// Register adds the shipper's metrics to reg: counters, the per-event
// shipping lag histogram, and gauges of the lag now (events and seconds)
// and of the last seq shipped.
func (s *Shipper) Register(reg prometheus.Registerer) error {
	m := s.m
	for _, c := range []prometheus.Collector{m.events, m.segments, m.segmentBytes, m.manifests, m.blobs, m.blobBytes, m.errors, m.shipLag,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pdslog_backup_lag_events", Help: "Durable events not yet shipped to the backup."},
			func() float64 { return float64(s.Lag().Events) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pdslog_backup_lag_seconds", Help: "Age of the oldest durable event not yet shipped (0 when caught up)."},
			func() float64 { return s.Lag().Age.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pdslog_backup_shipped_seq", Help: "Last seq shipped to the backup (every seq up to it)."},
			func() float64 { return float64(s.Lag().Shipped) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// reservoir keeps a uniform sample of observed lags (Algorithm R), for
// exact percentiles in reports and benchmarks.
type reservoir struct {
	mu   sync.Mutex
	n    int64
	vals []time.Duration
	rng  *rand.Rand
}

const reservoirSize = 1 << 16

func (r *reservoir) add(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if len(r.vals) < reservoirSize {
		r.vals = append(r.vals, d)
		return
	}
	if r.rng == nil {
		r.rng = rand.New(rand.NewPCG(1, 2))
	}
	if i := r.rng.Int64N(r.n); i < reservoirSize {
		r.vals[i] = d
	}
}

func (r *reservoir) quantile(q float64) time.Duration {
	r.mu.Lock()
	v := slices.Clone(r.vals)
	r.mu.Unlock()
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[min(len(v)-1, int(q*float64(len(v))))]
}
