package firehose_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/firehose"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// appendEvents appends evs in one batch and returns the last seq.
func appendEvents(t testing.TB, env *apitest.Env, evs ...*eventlog.Event) eventlog.Seq {
	t.Helper()
	seq, err := env.Log.Append(context.Background(), evs...)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func identityEvent(did syntax.DID, at syntax.Datetime) *eventlog.Event {
	return &eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Time: at, Identity: &eventlog.Identity{Handle: "someone.test"}}
}

func privateEvent(did syntax.DID, at syntax.Datetime) *eventlog.Event {
	return &eventlog.Event{Kind: eventlog.KindPrivate, DID: did, Time: at, Private: &eventlog.Private{Type: "test.note", Data: []byte("private")}}
}

// expectedFrames are the frames of the public events in (after, to], encoded
// from the log as it is now.
func expectedFrames(t testing.TB, env *apitest.Env, after, to eventlog.Seq) [][]byte {
	t.Helper()
	it, err := env.Log.Iter(context.Background(), after)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out [][]byte
	for it.Next() && it.Event().Seq <= to {
		if !it.Event().Kind.Public() {
			continue
		}
		f, err := firehose.Encode(it.Event())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFrames(t testing.TB, name string, got []frame, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d frames, want %d", name, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].raw, want[i]) {
			t.Fatalf("%s: frame %d (seq %d) differs from the encoded log event", name, i, got[i].seq)
		}
	}
}

// closeStatus is the close code a finished stream's read error carries.
func closeStatus(err error) websocket.StatusCode { return websocket.CloseStatus(err) }

// Without a cursor a subscriber starts at the head as it was when the
// handshake completed: nothing older, and everything appended after Dial
// returned.
func TestLiveFromNow(t *testing.T) {
	env := apitest.New(t)
	env.CreateAccount()
	env.CreateAccount()
	before := env.Log.Head()
	s := subscribe(t, env, -1)
	env.CreateAccount() // appended right after the handshake
	end := env.Log.Head()
	got := s.waitSeq(lastPublic(t, env))
	sameFrames(t, "live", got, expectedFrames(t, env, before, end))
	if got[0].seq <= int64(before) {
		t.Fatalf("live stream started at seq %d, head was %d", got[0].seq, before)
	}
	kinds(t, got, got[0].did(), "#identity", "#account", "#commit", "#sync")
}

// Subscribers connecting with cursors while writers keep appending get, for
// each, exactly the public events after their cursor: no gap and no
// duplicate where replay turns into live, and every frame is the encoding
// of the stored event.
func TestReplayLiveCrossover(t *testing.T) {
	env := apitest.New(t, func(o *api.Config) { o.Firehose.BatchSize = 4 }) // many passes
	gen := eventlogtest.NewStream(7, 12)
	var mu sync.Mutex // the stream generator is not safe for concurrent use
	next := func(n int) []*eventlog.Event {
		mu.Lock()
		defer mu.Unlock()
		evs := make([]*eventlog.Event, n)
		for i := range evs {
			evs[i] = gen.Next()
		}
		return evs
	}
	appendEvents(t, env, next(50)...)

	const writes = 400
	var written atomic.Int64
	writersDone := make(chan struct{})
	go func() {
		defer close(writersDone)
		rng := rand.New(rand.NewPCG(1, 2))
		for written.Load() < writes {
			n := 1 + rng.IntN(4)
			if _, err := env.Log.Append(context.Background(), next(n)...); err != nil {
				t.Error(err)
				return
			}
			written.Add(int64(n))
		}
	}()

	type sub struct {
		cursor int64
		s      *stream
	}
	var subs []sub
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 12; i++ {
		// Connect at different moments of the writing.
		for written.Load() < int64(i*writes/12) {
			time.Sleep(time.Millisecond)
		}
		head := int64(env.Log.Head())
		cursor := []int64{-1, 0, head / 2, head, rng.Int64N(head + 1)}[i%5]
		subs = append(subs, sub{cursor: cursor, s: subscribe(t, env, cursor)})
	}
	<-writersDone
	// A live subscriber sees what is written once it is in: one that got in
	// after the writers' last event (a loaded box) has seen nothing yet, so
	// write on until every live one has a frame.
	for give := time.Now().Add(30 * time.Second); time.Now().Before(give); {
		waiting := slices.ContainsFunc(subs, func(sb sub) bool { return sb.cursor < 0 && len(sb.s.snapshot()) == 0 })
		if !waiting {
			break
		}
		appendEvents(t, env, next(1)...)
		time.Sleep(10 * time.Millisecond)
	}
	end := env.Log.Head()
	last := lastPublic(t, env)
	for i, sb := range subs {
		got := sb.s.waitSeq(last)
		checkSeqs(t, fmt.Sprint("subscriber ", i), got)
		after := eventlog.Seq(sb.cursor)
		if sb.cursor < 0 {
			// Live: it starts somewhere, then must be gapless to the end.
			after = eventlog.Seq(got[0].seq - 1)
		}
		sameFrames(t, fmt.Sprintf("subscriber %d (cursor %d)", i, sb.cursor), got, expectedFrames(t, env, after, end))
	}
}

// A cursor past the head gets a FutureCursor error frame, then a close.
func TestFutureCursor(t *testing.T) {
	env := apitest.New(t)
	env.CreateAccount()
	for _, c := range []int64{int64(env.Log.Head()) + 1, 1 << 40} {
		got, err := subscribe(t, env, c).waitEnd()
		if len(got) != 1 || got[0].typ != "error" || got[0].evt.Error.Error != "FutureCursor" {
			t.Fatalf("cursor %d: frames %+v, want one FutureCursor error", c, got)
		}
		if closeStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("cursor %d: ended with %v, want a policy-violation close", c, err)
		}
	}
	// At the head exactly, the subscriber waits for the next event.
	s := subscribe(t, env, int64(env.Log.Head()))
	env.CreateAccount()
	if got := s.waitSeq(lastPublic(t, env)); got[0].typ != "#identity" {
		t.Fatalf("first frame %s", got[0].typ)
	}
}

// A cursor that is not a non-negative integer is refused with an error frame.
func TestInvalidCursor(t *testing.T) {
	env := apitest.New(t)
	for _, c := range []string{"-1", "abc", "1.5"} {
		conn := dialURL(t, streamURL(env.Server.URL, -1)+"?cursor="+c, nil)
		got, err := read(t, conn).waitEnd()
		if len(got) != 1 || got[0].typ != "error" || got[0].evt.Error.Error != "InvalidRequest" {
			t.Fatalf("cursor %q: frames %+v", c, got)
		}
		if closeStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("cursor %q: ended with %v", c, err)
		}
	}
	// Not a websocket: refused over plain HTTP.
	if r := env.Do("GET", "/xrpc/com.atproto.sync.subscribeRepos", nil, "", nil); r.Status != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d %s", r.Status, r.Body)
	}
}

// With a backfill window, a cursor whose next event is older than the
// window gets #info OutdatedCursor and starts at the first event inside
// it; the boundary is found across runs of tombstones (purged accounts)
// and private events, and a cursor already inside the window (or at the
// head) replays from itself with no #info.
func TestOutdatedCursor(t *testing.T) {
	var now atomic.Pointer[time.Time]
	env := apitest.New(t, func(o *api.Config) {
		o.Firehose.BackfillWindow = time.Hour
		o.Firehose.Now = func() time.Time { return *now.Load() }
	})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(i int) syntax.Datetime {
		return syntax.Datetime(t0.Add(time.Duration(i) * time.Minute).Format(syntax.AtprotoDatetimeLayout))
	}
	// 200 events one minute apart: identities of ten DIDs, every seventh
	// private; seqs 110-130 and 190-200 belong to accounts purged below.
	var evs []*eventlog.Event
	for i := 1; i <= 200; i++ {
		did := eventlogtest.DID(i % 10)
		switch {
		case i >= 110 && i <= 130:
			did = "did:plc:gonegonegonegonegone1"
		case i >= 190:
			did = "did:plc:gonegonegonegonegone2"
		}
		ev := identityEvent(did, at(i))
		if i%7 == 0 {
			ev = privateEvent(did, at(i))
		}
		evs = append(evs, ev)
	}
	if first := appendEvents(t, env, evs...); first != 200 {
		t.Fatalf("head %d", first)
	}
	for _, did := range []syntax.DID{"did:plc:gonegonegonegonegone1", "did:plc:gonegonegonegonegone2"} {
		if _, err := env.Log.Purge(t.Context(), did, 201); err != nil {
			t.Fatal(err)
		}
	}
	if head := env.Log.Head(); head != 200 {
		t.Fatalf("head %d after purges", head)
	}
	tests := []struct {
		name     string
		window   int // minutes after t0 where the window begins (now = that + 1h)
		cursor   int64
		outdated bool
		first    int64 // first event frame, 0 for none
	}{
		{"from zero, boundary in a tombstone run", 120, 0, true, 131},
		{"old cursor", 120, 50, true, 131},
		{"cursor inside the run, next timed event in the window", 120, 115, false, 131},
		{"cursor inside the window", 120, 150, false, 151},
		{"boundary on a private event", 77, 10, true, 78},
		{"boundary between two public events", 60, 0, true, 60},
		{"all older than the window", 500, 3, true, 0},
		{"everything inside the window", -10, 0, false, 1},
		{"at the head", 500, -2, false, 0}, // cursor: the head when it runs
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := t0.Add(time.Duration(tt.window)*time.Minute + time.Hour)
			now.Store(&n)
			cursor := tt.cursor
			if cursor == -2 {
				cursor = int64(env.Log.Head())
			}
			s := subscribe(t, env, cursor)
			var got []frame
			if tt.first == 0 {
				// Nothing to replay: the next event appended is the first.
				if tt.outdated {
					got = s.waitFor("#info", func(fs []frame) bool { return len(fs) > 0 })
					if got[0].typ != "#info" {
						t.Fatalf("first frame %s, want #info", got[0].typ)
					}
				}
				seq := appendEvents(t, env, identityEvent(eventlogtest.DID(1), ""))
				got = s.waitSeq(int64(seq))
				if tt.outdated {
					got = got[1:]
				}
				sameFrames(t, "after the window", got, expectedFrames(t, env, seq-1, seq))
				return
			}
			got = s.waitSeq(lastPublic(t, env))
			if tt.outdated {
				if got[0].typ != "#info" || got[0].evt.RepoInfo.Name != "OutdatedCursor" {
					t.Fatalf("first frame %s %+v, want #info OutdatedCursor", got[0].typ, got[0].evt.RepoInfo)
				}
				got = got[1:]
			}
			if got[0].typ == "#info" {
				t.Fatal("#info for a cursor inside the window")
			}
			if got[0].seq != tt.first {
				t.Fatalf("first event frame seq %d, want %d", got[0].seq, tt.first)
			}
			sameFrames(t, tt.name, got, expectedFrames(t, env, eventlog.Seq(tt.first-1), env.Log.Head()))
		})
	}
}

// metric returns the value of a counter or gauge (with the given label
// value, if any) from reg.
func metric(t testing.TB, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}

// waitMetric waits until a metric reaches want.
func waitMetric(t testing.TB, reg *prometheus.Registry, name, label string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for metric(t, reg, name, label) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s} = %v, want %v", name, label, metric(t, reg, name, label), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bigCommits returns n commits of one repo whose frames are about size bytes.
func bigCommits(r *eventlogtest.Repo, clock *eventlogtest.Clock, n, size int) []*eventlog.Event {
	evs := make([]*eventlog.Event, n)
	for i := range evs {
		evs[i] = r.Commit(clock, nil, size)
	}
	return evs
}

// A subscriber that caught up and then falls more than MaxLag events
// behind gets ConsumerTooSlow, then a close; the frames before it are
// still gapless.
func TestConsumerTooSlowLag(t *testing.T) {
	env := apitest.New(t, func(o *api.Config) {
		o.Firehose.MaxLag = 50
		o.Firehose.SocketSendBuffer = 8 << 10
	})
	reg := env.API.Metrics().Registry
	// The client's receive window stays at its initial size while it does
	// not read (~128 KiB), so 400 KiB of frames fill it and the server's
	// small send buffer.
	conn := dial(t, env, -1)
	r := eventlogtest.NewRepo("did:plc:slowslowslowslowslowslow")
	clock := eventlogtest.NewClock()
	// Caught up: it has read the first event.
	start := appendEvents(t, env, r.Commit(clock, nil, 10))
	_, raw, err := conn.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if f, err := decodeFrame(raw); err != nil || f.seq != int64(start) {
		t.Fatalf("first frame %+v %v", f, err)
	}
	// It stops reading: the server's writes block on the full socket while
	// the log runs far ahead.
	appendEvents(t, env, bigCommits(r, clock, 100, 4000)...)
	appendEvents(t, env, bigCommits(r, clock, 60, 10)...)
	got, err := read(t, conn).waitEnd()
	last := got[len(got)-1]
	if last.typ != "error" || last.evt.Error.Error != "ConsumerTooSlow" {
		t.Fatalf("last frame %s %+v, want ConsumerTooSlow", last.typ, last.evt)
	}
	if closeStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("ended with %v, want a policy-violation close", err)
	}
	got = got[:len(got)-1]
	sameFrames(t, "before the error", got, expectedFrames(t, env, start, eventlog.Seq(got[len(got)-1].seq)))
	// Counted once the server has finished closing (it may trail the client).
	waitMetric(t, reg, "pdslog_firehose_disconnects_total", firehose.ReasonTooSlowLag, 1)
}

// A client replaying from an old cursor far behind the head, reading
// steadily, is never too slow, however small MaxLag is; after catching up
// it follows live.
func TestSteadyReplayIsNotTooSlow(t *testing.T) {
	env := apitest.New(t, func(o *api.Config) { o.Firehose.MaxLag = 5; o.Firehose.BatchSize = 2 })
	r := eventlogtest.NewRepo("did:plc:replayreplayreplayreplay")
	clock := eventlogtest.NewClock()
	appendEvents(t, env, bigCommits(r, clock, 300, 100)...)
	s := subscribe(t, env, 0)
	s.waitSeq(300)
	seq := appendEvents(t, env, bigCommits(r, clock, 3, 100)...)
	got := s.waitSeq(int64(seq))
	sameFrames(t, "replay then live", got, expectedFrames(t, env, 0, seq))
}

// A client that stopped reading is dropped when a write does not complete
// within WriteTimeout; other subscribers are unaffected.
//
// It holds whether frames come from the ring or the log and whether writes
// are batched (the default server: ring and batched writes).
func TestConsumerTooSlowWrite(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ring, cork bool
		batch      int
	}{{"default", true, true, 0}, {"ring", true, false, 64}, {"log+cork", false, true, 64}} {
		t.Run(tc.name, func(t *testing.T) {
			env := apitest.New(t, func(o *api.Config) {
				o.Firehose.WriteTimeout = time.Second
				o.Firehose.SocketSendBuffer = 8 << 10
				o.Firehose.BatchSize = tc.batch
				if !tc.ring {
					firehose.NoRing(&o.Firehose)
				}
				if !tc.cork {
					firehose.NoCork(&o.Firehose)
				}
			})
			reg := env.API.Metrics().Registry
			stalled := dialURL(t, streamURL(env.Server.URL, -1), smallReadBuffer())
			fast := subscribe(t, env, -1)
			r := eventlogtest.NewRepo("did:plc:stallstallstallstallstal")
			clock := eventlogtest.NewClock()
			seq := appendEvents(t, env, bigCommits(r, clock, 100, 4000)...)
			waitMetric(t, reg, "pdslog_firehose_disconnects_total", firehose.ReasonTooSlowWrite, 1)
			sameFrames(t, "fast subscriber", fast.waitSeq(int64(seq)), expectedFrames(t, env, seq-100, seq))
			got, err := read(t, stalled).waitEnd()
			if err == nil || len(got) >= 100 {
				t.Fatalf("stalled subscriber got %d frames, ended with %v", len(got), err)
			}
			checkSeqs(t, "stalled", got)
			if n := metric(t, reg, "pdslog_firehose_disconnects_total", firehose.ReasonTooSlowWrite); n != 1 {
				t.Fatalf("%v too-slow drops, want only the stalled subscriber's", n)
			}
		})
	}
}

// Shutdown tells every subscriber the server is going away (close 1001)
// and waits for them; a new subscription is then refused.
func TestShutdownGoingAway(t *testing.T) {
	env := apitest.New(t)
	env.CreateAccount()
	live := subscribe(t, env, -1)
	replay := subscribe(t, env, 0)
	replay.waitSeq(lastPublic(t, env))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := env.API.CloseStreams(ctx); err != nil {
		t.Fatalf("CloseStreams: %v", err)
	}
	for _, s := range []*stream{live, replay} {
		if _, err := s.waitEnd(); closeStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("ended with %v, want going away", err)
		}
	}
	_, resp, err := websocket.Dial(ctx, streamURL(env.Server.URL, -1), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("subscribe after shutdown: %v %v", resp, err)
	}
}
