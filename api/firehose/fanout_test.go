package firehose_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/firehose"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/projections/testenv"
)

// 1,000 concurrent subscribers while events are appended: 200 read
// steadily (half replaying from cursor 0, half live), 800 connect and never
// read (half of them from cursor 0). Every reading one receives every
// event after its start, in order, byte-identical; every stalled one is
// dropped as too slow and no reading one is; the frames were encoded far
// fewer times than delivered (shared across subscribers); and the heap
// stays far below what a per-subscriber buffer of the stream would take.
func TestFanout1000(t *testing.T) {
	testenv.Slow(t, "1,000 websockets")
	const (
		readers    = 200
		stalled    = 800
		history    = 20 // events before anyone connects
		liveEvents = 60 // events appended while they are connected
		blockBytes = 8000
	)
	env := apitest.New(t, func(o *api.Config) {
		// Long enough that a reader starved of CPU on a loaded 2-core CI box
		// is not mistaken for a stalled one (seen at 3 s under -race).
		o.Firehose.WriteTimeout = 8 * time.Second
		o.Firehose.SocketSendBuffer = 16 << 10
	})
	reg := env.API.Metrics().Registry
	r := eventlogtest.NewRepo("did:plc:fanoutfanoutfanoutfanout")
	clock := eventlogtest.NewClock()
	appendEvents(t, env, bigCommits(r, clock, history, blockBytes)...)
	start := env.Log.Head()

	// A reader checks order and density as it goes and keeps only a hash
	// of what it received: storing the frames would be the very buffering
	// this test bounds.
	type reader struct {
		after eventlog.Seq
		last  atomic.Int64
		n     atomic.Int64
		sum   [32]byte
		err   error
		done  chan struct{}
		conn  *websocket.Conn
	}
	end := start + liveEvents
	t0 := time.Now()
	var rs []*reader
	var stalls []*websocket.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range readers + stalled {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cursor := int64(-1)
			if i%2 == 0 {
				cursor = 0
			}
			if i >= readers {
				c := dialURL(t, streamURL(env.Server.URL, cursor), smallReadBuffer())
				mu.Lock()
				stalls = append(stalls, c)
				mu.Unlock()
				return
			}
			rd := &reader{after: start, done: make(chan struct{}), conn: dial(t, env, cursor)}
			if cursor == 0 {
				rd.after = 0
			}
			rd.last.Store(int64(rd.after))
			mu.Lock()
			rs = append(rs, rd)
			mu.Unlock()
			go func() {
				defer close(rd.done)
				h := sha256.New()
				for rd.last.Load() < int64(end) {
					_, raw, err := rd.conn.Read(context.Background())
					if err != nil {
						rd.err = err
						return
					}
					f, err := decodeFrame(raw)
					if err != nil || f.seq != rd.last.Load()+1 {
						rd.err = fmt.Errorf("frame after seq %d: seq %d, %v", rd.last.Load(), f.seq, err)
						return
					}
					h.Write(raw)
					rd.last.Store(f.seq)
					rd.n.Add(1)
				}
				copy(rd.sum[:], h.Sum(nil))
			}()
		}()
	}
	wg.Wait()
	connected := liveHeap()
	t.Logf("connected after %v", time.Since(t0))
	// Every subscriber is connected (live ones start at start); now append.
	for range liveEvents / 5 {
		appendEvents(t, env, bigCommits(r, clock, 5, blockBytes)...)
	}
	// The stalled subscribers are still connected (their writes have not
	// timed out yet): whatever the server buffers for them is live now.
	appended := liveHeap()
	t.Logf("appended after %v", time.Since(t0))
	if env.Log.Head() != end {
		t.Fatalf("head %d, want %d", env.Log.Head(), end)
	}
	for i, rd := range rs {
		select {
		case <-rd.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("reader %d stuck at seq %d", i, rd.last.Load())
		}
		if rd.err != nil {
			t.Fatalf("reader %d (from %d): %v", i, rd.after, rd.err)
		}
	}
	t.Logf("readers done after %v", time.Since(t0))
	tooSlow := func() float64 {
		return metric(t, reg, "pdslog_firehose_disconnects_total", firehose.ReasonTooSlowWrite) +
			metric(t, reg, "pdslog_firehose_disconnects_total", firehose.ReasonTooSlowLag)
	}
	deadline := time.Now().Add(60 * time.Second)
	for tooSlow() < stalled && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("stalled dropped after %v", time.Since(t0))
	if n := tooSlow(); n != stalled {
		for _, r := range []string{firehose.ReasonClientClosed, firehose.ReasonPingTimeout, firehose.ReasonError} {
			t.Logf("%s: %v", r, metric(t, reg, "pdslog_firehose_disconnects_total", r))
		}
		t.Fatalf("%v subscribers dropped as too slow, want exactly the %d stalled ones", n, stalled)
	}
	if n := metric(t, reg, "pdslog_firehose_subscribers", ""); n != readers {
		t.Fatalf("%v subscribers still connected, want the %d readers", n, readers)
	}

	// Byte-identical to the encoded log, for both starting points.
	sums := map[eventlog.Seq][32]byte{}
	for _, after := range []eventlog.Seq{0, start} {
		sums[after] = sha256.Sum256(bytes.Join(expectedFrames(t, env, after, end), nil))
	}
	delivered := 0
	for i, rd := range rs {
		if rd.sum != sums[rd.after] {
			t.Fatalf("reader %d (from %d): frames differ from the encoded log", i, rd.after)
		}
		delivered += int(rd.n.Load())
	}
	if encodes := metric(t, reg, "pdslog_firehose_frame_encodes_total", ""); encodes > float64(delivered)/50 {
		t.Fatalf("%v encodings for %d deliveries: frames are not shared", encodes, delivered)
	}
	if len(stalls) != stalled {
		t.Fatalf("%d stalled clients", len(stalls))
	}

	// Memory: a per-subscriber buffer of the whole stream would take
	// subscribers × stream bytes (the stalled ones would keep theirs until
	// dropped); the server holds one small batch of shared frames per
	// subscriber, so what grows is only what is in flight.
	perSubscriber := int64(readers+stalled) * (history + liveEvents) * blockBytes
	grew := int64(appended) - int64(connected)
	t.Logf("live heap %d MiB connected, +%d MiB while appending; a per-subscriber buffer of the stream: %d MiB; %d deliveries, %v encodings",
		connected>>20, grew>>20, perSubscriber>>20, delivered, metric(t, reg, "pdslog_firehose_frame_encodes_total", ""))
	if grew > perSubscriber/4 {
		t.Fatalf("live heap grew %d MiB while appending, over a quarter of per-subscriber buffering (%d MiB)", grew>>20, perSubscriber>>20)
	}
}

// liveHeap is the heap the garbage collector found live in a collection
// forced now (what is still reachable, not what was allocated since).
func liveHeap() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}
