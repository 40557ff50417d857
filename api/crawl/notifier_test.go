package crawl_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/crawl"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// relay records the requestCrawl calls it gets, as a relay's HTTP API
// would receive them.
type relay struct {
	*httptest.Server
	mu    sync.Mutex
	times []time.Time
	got   chan string
}

func newRelay(t *testing.T, status int) *relay {
	r := &relay{got: make(chan string, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/xrpc/com.atproto.sync.requestCrawl" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("unexpected request %s %s %q", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
		}
		var in struct{ Hostname string }
		if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
			t.Errorf("body: %v", err)
		}
		r.mu.Lock()
		r.times = append(r.times, time.Now())
		r.mu.Unlock()
		w.WriteHeader(status)
		r.got <- in.Hostname
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *relay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.times)
}

func TestNotifierOnStartAndAfterActivity(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	good, broken := newRelay(t, http.StatusOK), newRelay(t, http.StatusInternalServerError)
	const interval = 300 * time.Millisecond
	n := &crawl.Notifier{Hostname: "pds.example.com", Crawlers: []string{good.URL + "/", broken.URL}, Interval: interval,
		Logger: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- n.Run(ctx, l) }()

	// On start, every crawler is asked, with our hostname; a failing one
	// does not stop the others.
	for _, r := range []*relay{good, broken} {
		if h := <-r.got; h != "pds.example.com" {
			t.Fatalf("hostname %q", h)
		}
	}
	// A burst of activity gives one more round, not before the interval.
	clock := eventlogtest.NewClock()
	repo := eventlogtest.NewRepo(eventlogtest.DID(1))
	for range 20 {
		if _, err := l.Append(t.Context(), repo.Commit(clock, nil, 10)); err != nil {
			t.Fatal(err)
		}
	}
	<-good.got
	<-broken.got // the broken relay is tried again
	good.mu.Lock()
	gap := good.times[1].Sub(good.times[0])
	good.mu.Unlock()
	// Unthrottled, the burst would be reported within milliseconds; the
	// round is timed from when the first was sent, not received.
	if gap < interval/2 {
		t.Fatalf("second round %s after the first, want about %s", gap, interval)
	}
	// No activity since: no third round within two intervals.
	select {
	case <-good.got:
		t.Fatal("a round without new activity")
	case <-time.After(2 * interval):
	}
	if c := good.count(); c != 2 {
		t.Fatalf("%d rounds, want 2", c)
	}
	// New activity after the interval is reported.
	if _, err := l.Append(t.Context(), repo.Commit(clock, nil, 10)); err != nil {
		t.Fatal(err)
	}
	<-good.got
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

func TestNotifierWithoutCrawlersDoesNothing(t *testing.T) {
	l := eventlogtest.Open(t, nil)
	if err := (&crawl.Notifier{Hostname: "x.example.com"}).Run(t.Context(), l); err != nil {
		t.Fatal(err)
	}
}
