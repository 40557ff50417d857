package repos_test

import (
	"context"
	"testing"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/repos"
)

// BenchmarkRebuild measures `pdslog replay` of the repos projection:
// Reset + CatchUp over a pre-filled log, in events/s.
func BenchmarkRebuild(b *testing.B) {
	const events = 100_000
	l := eventlogtest.Open(b, &eventlog.Options{SealKey: make([]byte, 32)})
	s := eventlogtest.NewStream(1, 1000)
	ctx := context.Background()
	batch := make([]*eventlog.Event, 0, 1000)
	for i := 0; i < events; i++ {
		batch = append(batch, s.Next())
		if len(batch) == cap(batch) {
			if _, err := l.Append(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	store, err := projections.OpenStore(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	r := projections.NewRunner(l, []projections.Projection{repos.New(store)}, nil)
	b.ResetTimer()
	for range b.N {
		if err := r.Rebuild(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
