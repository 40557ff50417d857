package firehose_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/coder/websocket"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/firehose"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// BenchmarkSubscribeFanout measures delivery through the real server:
// b.N events of ~2 KiB frames are in the log; subs subscribers over
// loopback (in this process, so their reading shares the CPU) connect from
// the cursor before them and read every frame. It reports frames delivered
// per second (connect + read all, wall clock), the same measured for a
// bare websocket probe (a pre-encoded frame written n times by one
// goroutine per client, perf-limits.md §5) in the same run, and the ratio.
// Subscribers pull replay and live through one code path, so a replay
// measures the live path's cost without the log's fsyncs in the loop.
// With 1,000 subscribers the handshakes dominate unless b.N is large: run
// that case with -benchtime=300x. Mode "log" is the server before the
// shared tail and batched writes (NoRing, NoCork); "default" is today's.
func BenchmarkSubscribeFanout(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		for _, mode := range []string{"log", "default"} {
			b.Run(fmt.Sprintf("subs=%d/%s", subs, mode), func(b *testing.B) {
				env := apitest.New(b, func(o *api.Config) {
					o.Firehose.MaxLag = 1 << 40
					if mode == "log" {
						firehose.NoRing(&o.Firehose)
						firehose.NoCork(&o.Firehose)
					}
				})
				r := eventlogtest.NewRepo("did:plc:benchbenchbenchbenchbench")
				clock := eventlogtest.NewClock()
				start := env.Log.Head()
				for n := 0; n < b.N; n += 1000 {
					appendEvents(b, env, bigCommits(r, clock, min(1000, b.N-n), 1900)...)
				}
				if f := expectedFrames(b, env, start, start+1); len(f[0]) < 1900 || len(f[0]) > 2300 {
					b.Fatalf("frame of %d bytes", len(f[0]))
				}
				b.ResetTimer()
				t0 := time.Now()
				err := connectAndRead(subs, func() (*websocket.Conn, error) {
					return dialErr(streamURL(env.Server.URL, int64(start)))
				}, b.N)
				took := time.Since(t0)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				rate := float64(subs) * float64(b.N) / took.Seconds()
				probe := bareProbe(b, subs, b.N, 2048)
				b.ReportMetric(rate, "frames/s")
				b.ReportMetric(probe, "probe-frames/s")
				b.ReportMetric(rate/probe, "ratio")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// connectAndRead dials subs clients (16 handshakes at a time) and has each
// read n messages; it returns when all have.
func connectAndRead(subs int, dial func() (*websocket.Conn, error), n int) error {
	errs := make(chan error, subs)
	sem := make(chan struct{}, 16)
	for range subs {
		go func() {
			sem <- struct{}{}
			c, err := dial()
			<-sem
			if err != nil {
				errs <- err
				return
			}
			defer c.CloseNow()
			errs <- readN(c, n)
		}()
	}
	var first error
	for range subs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func dialErr(u string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(64 << 20)
	return c, nil
}

// readN reads n messages and discards them (every event here is public,
// so n events are n frames).
func readN(c *websocket.Conn, n int) error {
	for range n {
		if _, _, err := c.Read(context.Background()); err != nil {
			return err
		}
	}
	return nil
}

// bareProbe is perf-limits.md §5's probe: a bare coder/websocket server
// writing one pre-encoded frame of size bytes n times to each of subs
// clients (one writer goroutine each), clients connecting and reading as
// in the firehose measurement. It returns frames delivered per second.
func bareProbe(b *testing.B, subs, n, size int) float64 {
	b.Helper()
	f := bytes2KiB(b, size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := c.CloseRead(context.Background())
		for range n {
			if err := c.Write(ctx, websocket.MessageBinary, f); err != nil {
				return
			}
		}
		<-ctx.Done()
	}))
	defer srv.Close()
	t0 := time.Now()
	if err := connectAndRead(subs, func() (*websocket.Conn, error) { return dialErr("ws" + srv.URL[4:]) }, n); err != nil {
		b.Fatal(err)
	}
	return float64(subs) * float64(n) / time.Since(t0).Seconds()
}

// bytes2KiB is a real #commit frame of about size bytes.
func bytes2KiB(b *testing.B, size int) []byte {
	b.Helper()
	r := eventlogtest.NewRepo("did:plc:probeprobeprobeprobeprobe")
	ev := r.Commit(eventlogtest.NewClock(), nil, size-200)
	ev.Seq, ev.Time = 1, "2026-01-02T03:04:05.678Z"
	f, err := firehose.Encode(ev)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkLiveFanout measures the live path while the server writes:
// subs subscribers connected live (reading in this process, so they share
// the CPU) while 4 writers append b.N commits of ~2 KiB frames, one event
// per append as createRecord does. It reports the append rate while the
// subscribers follow (appends/s, the writers' wall clock) and the frames
// delivered per second until every subscriber has every frame (frames/s),
// for three servers: "log" (each subscriber iterates and decodes the log
// itself and writes each frame with its own syscall: the firehose before
// the shared tail), "ring" (frames from the shared tail's ring) and
// "ring+cork" (also one write syscall per batch: the default).
func BenchmarkLiveFanout(b *testing.B) {
	for _, subs := range []int{10, 100} {
		for _, mode := range []string{"log", "ring", "ring+cork"} {
			b.Run(fmt.Sprintf("subs=%d/%s", subs, mode), func(b *testing.B) {
				env := apitest.New(b, func(o *api.Config) {
					o.Firehose.MaxLag = 1 << 40
					if mode == "log" {
						firehose.NoRing(&o.Firehose)
					}
					if mode != "ring+cork" {
						firehose.NoCork(&o.Firehose)
					}
				})
				conns := make([]*websocket.Conn, subs)
				for i := range conns {
					c, err := dialErr(streamURL(env.Server.URL, -1))
					if err != nil {
						b.Fatal(err)
					}
					defer c.CloseNow()
					conns[i] = c
				}
				const writers = 4
				repos := make([]*eventlogtest.Repo, writers)
				clocks := make([]*eventlogtest.Clock, writers)
				evs := make([][]*eventlog.Event, writers)
				for w := range repos {
					repos[w] = eventlogtest.NewRepo(syntax.DID(fmt.Sprintf("did:plc:livefanout%015d", w)))
					clocks[w] = eventlogtest.NewClock()
					evs[w] = bigCommits(repos[w], clocks[w], (b.N+writers-1)/writers, 1900)
				}
				n := writers * len(evs[0])
				b.ResetTimer()
				t0 := time.Now()
				read := make(chan error, subs)
				for _, c := range conns {
					go func() { read <- readN(c, n) }()
				}
				wrote := make(chan error, writers)
				for w := range writers {
					go func() {
						for _, ev := range evs[w] {
							if _, err := env.Log.Append(context.Background(), ev); err != nil {
								wrote <- err
								return
							}
						}
						wrote <- nil
					}()
				}
				for range writers {
					if err := <-wrote; err != nil {
						b.Fatal(err)
					}
				}
				appendTook := time.Since(t0)
				for range subs {
					if err := <-read; err != nil {
						b.Fatal(err)
					}
				}
				took := time.Since(t0)
				b.StopTimer()
				b.ReportMetric(float64(n)/appendTook.Seconds(), "appends/s")
				b.ReportMetric(float64(subs*n)/took.Seconds(), "frames/s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
