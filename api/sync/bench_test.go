package sync_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/mst/car"
)

// buildRepo gives a's repo n records, 200 per commit, straight through the
// builder and the log (no HTTP, no rate limits), and catches up.
func buildRepo(b *testing.B, env *apitest.Env, a *apitest.Account, n int) {
	b.Helper()
	ctx := context.Background()
	for i := 0; i < n; {
		head, err := env.Log.RepoHead(ctx, a.DID)
		if err != nil {
			b.Fatal(err)
		}
		var ws []commit.Write
		for ; len(ws) < 200 && i < n; i++ {
			ws = append(ws, commit.Write{Action: eventlog.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(rk(i)),
				Record: post(fmt.Sprintf("post number %d of a large repository, with about a tweet's worth of text in it", i)), Validate: commit.ValidateSkip})
		}
		res, err := env.Builder.Build(ctx, commit.Repo{DID: a.DID, Head: &head, Key: a.Key, Blocks: env.Blocks.Source(a.DID)}, ws)
		if err != nil {
			b.Fatal(err)
		}
		seq, err := env.Log.Append(ctx, res.Event)
		if err != nil {
			b.Fatal(err)
		}
		if err := env.Runner.CatchUp(ctx, seq); err != nil {
			b.Fatal(err)
		}
	}
}

var heapObjects = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

func heapNow() uint64 {
	metrics.Read(heapObjects)
	return heapObjects[0].Value.Uint64()
}

// BenchmarkGetRepo streams a 100,000-record repo's CAR through the real
// server and reports the throughput (MB/s, from SetBytes) and the peak Go
// heap in use while streaming (server and client share the process),
// sampled every 200µs, against the CAR's size.
func BenchmarkGetRepo(b *testing.B) {
	const records = 100_000
	env := apitest.New(b)
	a := env.CreateAccount()
	buildRepo(b, env, a, records)
	u := env.Server.URL + "/xrpc/com.atproto.sync.getRepo?did=" + a.DID.String()

	fetch := func(w io.Writer) int64 {
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		n, err := io.Copy(w, resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	// Once, outside the measurement: the CAR holds every record.
	pr, pw := io.Pipe()
	counted := make(chan int64, 1)
	go func() {
		cr, err := car.NewReader(pr, &car.ReaderOptions{SkipVerify: true})
		if err != nil {
			pr.CloseWithError(err)
			counted <- -1
			return
		}
		var n int64
		for range cr.All() {
			n++
		}
		if cr.Err() != nil {
			n = -1
		}
		pr.CloseWithError(cr.Err())
		counted <- n
	}()
	size := fetch(pw)
	pw.Close()
	if n := <-counted; n < records+1 {
		b.Fatalf("CAR has %d blocks, want more than %d", n, records)
	}
	b.SetBytes(size)

	runtime.GC()
	base := heapNow()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			if h := heapNow(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		if n := fetch(io.Discard); n != size {
			b.Fatalf("CAR of %d bytes, then %d", size, n)
		}
	}
	b.StopTimer()
	close(stop)
	<-done
	b.ReportMetric(float64(size)/1e6, "car-MB")
	b.ReportMetric(float64(peak.Load())/1e6, "peak-heap-MB")
	b.ReportMetric(float64(base)/1e6, "heap-before-MB")
}
