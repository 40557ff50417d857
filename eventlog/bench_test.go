package eventlog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// Run with: go test -run XXX -bench . -benchtime 2s ./eventlog/
//
// BenchmarkAppend/raw_fsync_<size> is the baseline: one write plus one
// fsync per event to a plain file in the same temp dir, serially. The log's
// figures are meant to be read as ratios to it (group commit lets
// concurrent appenders share fsyncs).

var benchSizes = []int{1 << 10, 6 << 10}

func sizeName(size int) string { return fmt.Sprintf("%dKiB", size>>10) }

func BenchmarkAppend(b *testing.B) {
	for _, size := range benchSizes {
		b.Run("raw_fsync_"+sizeName(size), func(b *testing.B) { benchRawFsync(b, size) })
	}
	for _, size := range benchSizes {
		for _, appenders := range []int{1, 16, 64} {
			name := "serial"
			if appenders > 1 {
				name = fmt.Sprint(appenders)
			}
			b.Run(sizeName(size)+"/"+name, func(b *testing.B) { benchAppend(b, size, appenders) })
		}
	}
}

func benchRawFsync(b *testing.B, size int) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// sizedCommit returns r's next commit (one create op) with its blocks sized
// so that the stored event is exactly size bytes.
func sizedCommit(r *eventlogtest.Repo, clock *eventlogtest.Clock, size int) *eventlog.Event {
	path := "app.bsky.feed.post/" + clock.Next().String()
	ops := []eventlog.Op{{Action: eventlog.ActionCreate, Path: path, CID: eventlogtest.CID(path)}}
	ev := r.Commit(clock, ops, 0)
	ev.Time = "2025-01-01T00:00:00.000Z" // Append fills this; count it
	blocks := size - eventlog.EncodedSize(ev)
	for range 3 { // the byte string header grows with its length
		ev.Commit.Blocks = make([]byte, max(blocks, 0))
		blocks += size - eventlog.EncodedSize(ev)
	}
	if got := eventlog.EncodedSize(ev); got != size {
		panic(fmt.Sprintf("sized commit is %d bytes, want %d", got, size))
	}
	ev.Time = ""
	return ev
}

func benchAppend(b *testing.B, size, appenders int) {
	// groups counts the log's group commits; fsyncs counts the WAL syncs
	// Pebble actually issues (it may cover several groups with one).
	var groups, fsyncs atomic.Int64
	counter := errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				fsyncs.Add(1)
			}
		}
		return nil
	})
	l, err := eventlog.Open(b.TempDir(), &eventlog.Options{Logger: discardLogger(),
		FS: eventlog.WrapFS(vfs.Default, counter), SealKey: make([]byte, eventlog.KeySize),
		OnSync: func(int, time.Duration) { groups.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	type worker struct {
		repo  *eventlogtest.Repo
		clock *eventlogtest.Clock
	}
	workers := make([]worker, appenders)
	for g := range workers {
		workers[g] = worker{eventlogtest.NewRepo(eventlogtest.DID(g)), eventlogtest.NewClock()}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(size))
	b.ResetTimer()
	groups.Store(0)
	fsyncs.Store(0)
	for g := range appenders {
		w := workers[g]
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := l.Append(ctx, sizedCommit(w.repo, w.clock, size)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if n := groups.Load(); n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "events/group")
	}
	if n := fsyncs.Load(); n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "events/fsync")
	}
}

// BenchmarkReplay measures reading the log from the start: 100k events of
// 1 KiB (commits over 100 repos), written once.
func BenchmarkReplay(b *testing.B) {
	const (
		events = 100_000
		size   = 1 << 10
		batch  = 1000
	)
	dir := b.TempDir()
	l, err := eventlog.Open(dir, &eventlog.Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	clock := eventlogtest.NewClock()
	repos := make([]*eventlogtest.Repo, 100)
	for i := range repos {
		repos[i] = eventlogtest.NewRepo(eventlogtest.DID(i))
	}
	for n := 0; n < events; n += batch {
		evs := make([]*eventlog.Event, batch)
		for i := range evs {
			evs[i] = sizedCommit(repos[(n+i)%len(repos)], clock, size)
		}
		if _, err := l.Append(context.Background(), evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.Run(fmt.Sprintf("%dk_%s", events/1000, sizeName(size)), func(b *testing.B) {
		b.SetBytes(size)
		ctx := context.Background()
		b.ResetTimer()
		read := 0
		for read < b.N {
			it, err := l.Iter(ctx, 0)
			if err != nil {
				b.Fatal(err)
			}
			for read < b.N && it.Next() {
				read++
			}
			if err := it.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
