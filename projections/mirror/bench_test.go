package mirror_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/projections/mirror"
)

// BenchmarkMirror mirrors a log of 100k events (PDSLOG_MIRROR_BENCH_EVENTS
// changes it) of 50 accounts (commits of 1–4 record writes, identity,
// account and private events) into the D1 emulator with the default
// request size, no request budget, and reports events/s and D1 requests
// per 1000 events. Run it with -benchtime=1x.
func BenchmarkMirror(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("PDSLOG_MIRROR_BENCH_EVENTS")); err == nil {
		n = v
	}
	dir := b.TempDir()
	l := openLog(b, dir)
	defer l.Close()
	store := openDisk(b, dir)
	st := committest.NewStream(11, 50)
	start := time.Now()
	for appended := 0; appended < n; {
		batch := min(500, n-appended)
		for range batch {
			if _, err := l.Append(b.Context(), st.Next()); err != nil {
				b.Fatal(err)
			}
		}
		appended += batch
	}
	b.Logf("built %d events in %s", n, time.Since(start).Round(time.Millisecond))
	b.ResetTimer()
	for range b.N {
		tg := &target{db: emu.Database(b), apiBase: emu.APIBase, r2: startR2(b)}
		db := tg.client(b, nil)
		m := tg.mirror(b, db, store, func(o *mirror.Options) { o.InlineLimit = mirror.DefaultInlineLimit })
		t0 := time.Now()
		if err := catchUp(b.Context(), l, m, mirror.DefaultBatchEvents); err != nil {
			b.Fatal(err)
		}
		took := time.Since(t0)
		s := m.Stats()
		b.ReportMetric(float64(s.Events)/took.Seconds(), "events/s")
		b.ReportMetric(float64(db.Requests())*1000/float64(s.Events), "requests/1000events")
		b.Logf("%d events in %s: %d D1 requests (%d writing rows)", s.Events, took.Round(time.Millisecond), db.Requests(), s.Requests)
	}
}
