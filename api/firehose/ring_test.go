package firehose_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/firehose"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// waitRing waits until the shared tail's ring holds seq.
func waitRing(t testing.TB, h *firehose.Handler, seq eventlog.Seq) (lo, hi uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lo, hi, ok := h.RingRange()
		if ok && hi >= uint64(seq) {
			return lo, hi
		}
		if time.Now().After(deadline) {
			t.Fatalf("ring (%d, %d] (running %v), waiting for %d", lo, hi, ok, seq)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitNoSubscribers waits until h has no subscribers.
func waitNoSubscribers(t testing.TB, h *firehose.Handler) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for h.Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers left", h.Subscribers())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A subscriber replaying from 0, far behind a small ring, while writes go
// on, reads the log until it reaches the ring and then takes its frames
// from the ring: the frames it gets are exactly the log's public events,
// byte for byte, with no gap and no duplicate at either crossing.
func TestRingHandOff(t *testing.T) {
	var h *firehose.Handler
	env := apitest.New(t, func(o *api.Config) {
		firehose.RingBounds(&o.Firehose, 64, 1<<20)
		firehose.OnNew(&o.Firehose, func(x *firehose.Handler) { h = x })
		o.Firehose.BatchSize = 8
	})
	reg := env.API.Metrics().Registry
	// A first subscriber starts the shared tail and leaves, so the metrics
	// below are the replaying subscriber's alone.
	first := dial(t, env, -1)
	_ = first.Close(websocket.StatusNormalClosure, "")
	waitNoSubscribers(t, h)

	r := eventlogtest.NewRepo("did:plc:handoffhandoffhandoffhan")
	clock := eventlogtest.NewClock()
	for range 5 {
		evs := bigCommits(r, clock, 100, 300)
		evs = append(evs, privateEvent(r.DID, ""), identityEvent(r.DID, ""))
		appendEvents(t, env, evs...)
	}
	head := env.Log.Head()
	if lo, _ := waitRing(t, h, head); lo < 64 {
		t.Fatalf("ring starts at %d: the replay would not start behind it", lo)
	}
	s := subscribe(t, env, 0)
	// Writes go on while it replays.
	errs := make(chan error, 1)
	go func() {
		for range 30 {
			evs := bigCommits(r, clock, 10, 300)
			evs = append(evs, privateEvent(r.DID, ""))
			if _, err := env.Log.Append(context.Background(), evs...); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	// Once it has caught up, one more event: it is at the ring's newest
	// seq (or the ring reaches it), so this one comes from the ring.
	s.waitSeq(lastPublic(t, env))
	last := appendEvents(t, env, r.Commit(clock, nil, 300))
	got := s.waitSeq(int64(last))
	sameFrames(t, "replay, ring hand-off, live", got, expectedFrames(t, env, 0, last))
	if n := metric(t, reg, "pdslog_firehose_log_reads_total", ""); n < 1 {
		t.Fatalf("%v log reads: the replay did not start from the log", n)
	}
	if n := metric(t, reg, "pdslog_firehose_ring_frames_total", ""); n < 1 {
		t.Fatalf("%v frames from the ring: the subscriber never joined it", n)
	}
}

// Once Purge has returned, the purged account's events reach neither a
// new subscriber reading from cursor 0 (whose position is inside the ring
// holding their frames) nor a live one; other accounts' events still do.
func TestPurgeNeverReachesSubscribers(t *testing.T) {
	var h *firehose.Handler
	env := apitest.New(t, func(o *api.Config) {
		firehose.OnNew(&o.Firehose, func(x *firehose.Handler) { h = x })
	})
	reg := env.API.Metrics().Registry
	live := subscribe(t, env, -1)
	start := env.Log.Head()
	waitRing(t, h, start)
	a := eventlogtest.NewRepo("did:plc:goneawaygoneawaygoneaway")
	b := eventlogtest.NewRepo("did:plc:stayingstayingstayingsta")
	clock := eventlogtest.NewClock()
	var evs []*eventlog.Event
	for range 5 {
		evs = append(evs, a.Commit(clock, nil, 200), b.Commit(clock, nil, 200))
	}
	evs = append(evs, identityEvent(a.DID, ""))
	head := appendEvents(t, env, evs...)
	live.waitSeq(int64(head))
	if lo, _ := waitRing(t, h, head); lo > uint64(start) {
		t.Fatalf("ring starts at %d, after the purged events", lo)
	}
	if n, err := env.Log.Purge(t.Context(), a.DID, head+1); err != nil || n != 6 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	fresh := subscribe(t, env, int64(start))
	// The account's head went with the purge: a new commit starts over.
	again := eventlogtest.NewRepo(a.DID)
	last := appendEvents(t, env, b.Commit(clock, nil, 200), again.Commit(clock, nil, 10))
	for name, s := range map[string]*stream{"from the cursor": fresh, "live": live} {
		got := s.waitSeq(int64(last))
		if name == "live" {
			got = got[len(got)-2:]
		}
		for _, f := range got {
			if f.did() == string(a.DID) && f.seq <= int64(head) {
				t.Fatalf("%s: purged event %d (%s) was sent", name, f.seq, f.typ)
			}
		}
		if name != "live" {
			sameFrames(t, name, got, expectedFrames(t, env, start, last))
		}
	}
	if n := metric(t, reg, "pdslog_firehose_ring_resets_total", ""); n < 1 {
		t.Fatalf("ring reset %v times, want at least once", n)
	}
}

// Control frames get through corked writes: a client's pings are answered
// while the server streams large batches to it and while it is idle.
func TestPingsAnsweredWhileCorked(t *testing.T) {
	env := apitest.New(t, func(o *api.Config) { o.Firehose.BatchSize = 256 })
	s := subscribe(t, env, -1)
	ping := func(what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := s.conn.Ping(ctx); err != nil {
			t.Fatalf("ping %s: %v", what, err)
		}
	}
	ping("while idle")
	r := eventlogtest.NewRepo("did:plc:corkcorkcorkcorkcorkcork")
	clock := eventlogtest.NewClock()
	errs := make(chan error, 1)
	go func() {
		for range 40 {
			if _, err := env.Log.Append(context.Background(), bigCommits(r, clock, 50, 1000)...); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for i := range 20 {
		ping(fmt.Sprintf("%d while streaming", i))
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	last := env.Log.Head()
	s.waitSeq(int64(last))
	ping("idle again")
	got := s.snapshot()
	sameFrames(t, "streamed", got, expectedFrames(t, env, last-2000, last))
}
