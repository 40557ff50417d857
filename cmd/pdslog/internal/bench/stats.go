package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// maxSamples bounds the latency samples kept per operation; past it a
// reservoir keeps a uniform sample, so percentiles stay exact for runs up
// to this many calls and unbiased estimates beyond.
const maxSamples = 200_000

// opStats collects one operation's latencies and errors.
type opStats struct {
	mu      sync.Mutex
	count   int64 // successful calls
	seen    int64 // successful calls offered to the reservoir
	samples []time.Duration
	max     time.Duration
	errors  map[string]int64
	rng     *rand.Rand
}

func newOpStats() *opStats {
	return &opStats{errors: map[string]int64{}, rng: rand.New(rand.NewPCG(1, 2))}
}

func (s *opStats) ok(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	s.seen++
	s.max = max(s.max, d)
	if len(s.samples) < maxSamples {
		s.samples = append(s.samples, d)
		return
	}
	if i := s.rng.Int64N(s.seen); i < maxSamples {
		s.samples[i] = d
	}
}

func (s *opStats) fail(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors[name]++
}

// counts returns the successful and the failed calls.
func (s *opStats) counts() (ok, failed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.errors {
		failed += e
	}
	return s.count, failed
}

// add adds o's calls, samples and errors to s (a total).
func (s *opStats) add(o *opStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s.samples = append(s.samples, o.samples...)
	s.count += o.count
	s.seen += o.seen
	s.max = max(s.max, o.max)
	for k, v := range o.errors {
		s.errors[k] += v
	}
}

func (s *opStats) report(op string, elapsed time.Duration) OpReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := OpReport{Op: op, Count: s.count, MaxMs: ms(s.max), Sampled: s.seen > int64(len(s.samples))}
	if elapsed > 0 {
		r.OpsPerSec = float64(s.count) / elapsed.Seconds()
	}
	sorted := slices.Clone(s.samples)
	slices.Sort(sorted)
	r.P50Ms, r.P90Ms, r.P99Ms = ms(percentile(sorted, 50)), ms(percentile(sorted, 90)), ms(percentile(sorted, 99))
	if len(s.errors) > 0 {
		r.Errors = map[string]int64{}
		for k, v := range s.errors {
			r.Errors[k] = v
		}
	}
	return r
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
