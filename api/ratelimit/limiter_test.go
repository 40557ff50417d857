package ratelimit

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testDID = syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")

func TestLimiterFixedWindow(t *testing.T) {
	l := NewLimiter(0, Limit{Points: 3, Window: time.Minute})
	for i := 1; i <= 3; i++ {
		d := l.Charge("k", 1, t0.Add(time.Duration(i)*time.Second))
		if !d.OK || d.Remaining != 3-i || d.Limit != 3 || d.Window != time.Minute || !d.Reset.Equal(t0.Add(time.Second+time.Minute)) {
			t.Fatalf("charge %d: %+v", i, d)
		}
	}
	// the window opened at the first charge (t0+1s) and closes a minute later
	d := l.Charge("k", 1, t0.Add(30*time.Second))
	if d.OK || d.Remaining != 0 || d.RetryAfter != 31*time.Second || !d.Reset.Equal(t0.Add(61*time.Second)) {
		t.Fatalf("over limit: %+v", d)
	}
	// refusals are not counted: still refused, same reset
	if d := l.Charge("k", 1, t0.Add(60*time.Second)); d.OK || d.RetryAfter != time.Second {
		t.Fatalf("%+v", d)
	}
	// a new window at the close
	if d := l.Charge("k", 1, t0.Add(61*time.Second)); !d.OK || d.Remaining != 2 || !d.Reset.Equal(t0.Add(121*time.Second)) {
		t.Fatalf("new window: %+v", d)
	}
	// other keys are independent
	if d := l.Charge("other", 3, t0.Add(30*time.Second)); !d.OK || d.Remaining != 0 {
		t.Fatalf("%+v", d)
	}
	// Peek and zero-point charges count nothing
	if d := l.Peek("k", t0.Add(62*time.Second)); !d.OK || d.Remaining != 2 {
		t.Fatalf("peek %+v", d)
	}
	if d := l.Charge("k", 0, t0.Add(62*time.Second)); !d.OK || d.Remaining != 2 {
		t.Fatalf("zero %+v", d)
	}
	if d := l.Peek("fresh", t0); !d.OK || d.Remaining != 3 || l.Len() != 2 {
		t.Fatalf("peek fresh %+v, len %d", d, l.Len())
	}
	// a charge larger than the limit never fits
	if d := l.Charge("big", 4, t0); d.OK {
		t.Fatalf("%+v", d)
	}
	// a charge that does not fit leaves the budget intact
	if d := l.Charge("k", 3, t0.Add(63*time.Second)); d.OK || d.Remaining != 2 {
		t.Fatalf("%+v", d)
	}
	if d := l.Charge("k", 2, t0.Add(63*time.Second)); !d.OK || d.Remaining != 0 {
		t.Fatalf("%+v", d)
	}
	l.Reset("k")
	if d := l.Charge("k", 3, t0.Add(64*time.Second)); !d.OK {
		t.Fatalf("after reset %+v", d)
	}
}

func TestLimiterMultipleLimits(t *testing.T) {
	short := Limit{Points: 5, Window: time.Minute}
	long := Limit{Points: 8, Window: time.Hour}
	l := NewLimiter(0, short, long)
	// 5 in the first minute: the short limit binds (fewer remaining)
	var d Decision
	for i := 0; i < 5; i++ {
		d = l.Charge("k", 1, t0)
	}
	if !d.OK || d.Limit != 5 || d.Remaining != 0 {
		t.Fatalf("%+v", d)
	}
	d = l.Charge("k", 1, t0.Add(time.Second))
	if d.OK || d.Limit != 5 || d.RetryAfter != 59*time.Second {
		t.Fatalf("short refusal %+v", d)
	}
	// next minute: 3 more fit the long limit, then it binds with the later retry
	for i := 0; i < 3; i++ {
		d = l.Charge("k", 1, t0.Add(time.Minute))
	}
	if !d.OK || d.Limit != 8 || d.Remaining != 0 {
		t.Fatalf("%+v", d)
	}
	d = l.Charge("k", 1, t0.Add(time.Minute+time.Second))
	if d.OK || d.Limit != 8 || d.RetryAfter != time.Hour-time.Minute-time.Second || d.Window != time.Hour {
		t.Fatalf("long refusal %+v", d)
	}
	// atomic: a charge refused by one limit is counted by none
	l2 := NewLimiter(0, Limit{Points: 10, Window: time.Minute}, Limit{Points: 4, Window: time.Hour})
	l2.Charge("k", 3, t0)
	if d := l2.Charge("k", 2, t0); d.OK {
		t.Fatalf("%+v", d)
	}
	if d := l2.Peek("k", t0); d.Remaining != 1 || d.Limit != 4 {
		t.Fatalf("%+v", d)
	}
	// the hour limit had exactly one point left
	if d := l2.Charge("k", 1, t0); !d.OK || d.Remaining != 0 {
		t.Fatalf("%+v", d)
	}
}

func TestLimiterBounded(t *testing.T) {
	l := NewLimiter(100, Limit{Points: 1, Window: time.Minute})
	for i := 0; i < 1000; i++ {
		l.Charge(fmt.Sprint("k", i), 1, t0.Add(time.Duration(i)*time.Millisecond))
		if n := l.Len(); n > 100 {
			t.Fatalf("%d keys tracked", n)
		}
	}
	// the newest keys are still limited, the oldest were evicted
	if d := l.Charge("k999", 1, t0.Add(time.Second)); d.OK {
		t.Fatal("newest key forgotten")
	}
	if d := l.Charge("k0", 1, t0.Add(time.Second)); !d.OK {
		t.Fatal("oldest key not evicted")
	}
	// expired windows are swept when room is needed, not evicted live ones
	l = NewLimiter(10, Limit{Points: 1, Window: time.Minute})
	for i := 0; i < 10; i++ {
		l.Charge(fmt.Sprint("old", i), 1, t0)
	}
	l.Charge("live", 1, t0.Add(30*time.Second))
	// "live" evicted one old key; now all old ones expire
	l.Charge("new", 1, t0.Add(61*time.Second))
	if n := l.Len(); n != 2 {
		t.Fatalf("%d keys after sweep, want 2", n)
	}
	if d := l.Charge("live", 1, t0.Add(61*time.Second)); d.OK {
		t.Fatal("live key lost in sweep")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(0, Limit{Points: 1000, Window: time.Hour}, Limit{Points: 500, Window: time.Minute})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if l.Charge("k", 1, t0).OK {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ok != 500 {
		t.Fatalf("%d charges allowed, want exactly 500", ok)
	}
}

func TestLimiterPanicsOnBadLimit(t *testing.T) {
	for _, lims := range [][]Limit{nil, {{Points: 0, Window: time.Minute}}, {{Points: 1, Window: time.Millisecond}}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%v accepted", lims)
				}
			}()
			NewLimiter(0, lims...)
		}()
	}
}

func TestDecisionHeaders(t *testing.T) {
	l := NewLimiter(0, LimitCreateSessionDay, LimitCreateSession5Min)
	h := http.Header{}
	d := l.Charge("k", 1, t0)
	d.SetHeaders(h)
	want := map[string]string{
		"RateLimit-Limit":     "30",
		"RateLimit-Remaining": "29",
		"RateLimit-Reset":     fmt.Sprint(t0.Add(5 * time.Minute).Unix()),
		"RateLimit-Policy":    "30;w=300",
		"Retry-After":         "",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if got := h.Get("Access-Control-Expose-Headers"); got != "RateLimit-Limit, RateLimit-Reset, RateLimit-Remaining, RateLimit-Policy" {
		t.Errorf("expose %q", got)
	}
	// refused: Retry-After in whole seconds, rounded up
	for i := 0; i < 29; i++ {
		l.Charge("k", 1, t0)
	}
	h = http.Header{}
	d = l.Charge("k", 1, t0.Add(1500*time.Millisecond))
	d.SetHeaders(h)
	if d.OK || h.Get("Retry-After") != "299" || h.Get("RateLimit-Remaining") != "0" {
		t.Errorf("refused headers %v (%+v)", h, d)
	}
	if got := h.Values("Access-Control-Expose-Headers"); len(got) != 2 || got[1] != "Retry-After" {
		t.Errorf("expose %q", got)
	}
	// the reference's policy strings
	for lim, want := range map[Limit]string{
		LimitCreateSessionDay: "300;w=86400", LimitRepoWriteHour: "5000;w=3600",
		LimitRepoWriteDay: "35000;w=86400", LimitUpdateHandle5Min: "10;w=300",
		LimitUploadBlobDay: "1000;w=86400", LimitGlobalIP: "3000;w=300",
	} {
		if got := lim.Policy(); got != want {
			t.Errorf("policy %q, want %q", got, want)
		}
	}
	h = http.Header{}
	Decision{}.SetHeaders(h)
	if len(h) != 0 {
		t.Errorf("zero decision wrote %v", h)
	}
}

func TestWriteLimiter(t *testing.T) {
	w := NewWriteLimiter(0)
	if WritePoints(1, 1, 1) != 6 || WritePoints(10, 0, 0) != 30 {
		t.Fatal("WritePoints")
	}
	// 1666 creates = 4998 points in the hour; a create no longer fits, a delete does
	for i := 0; i < 1666; i++ {
		if d := w.Charge(testDID, WritePointsCreate, t0); !d.OK {
			t.Fatalf("create %d refused: %+v", i, d)
		}
	}
	if d := w.Charge(testDID, WritePointsCreate, t0); d.OK || d.Limit != 5000 || d.Remaining != 2 || d.RetryAfter != time.Hour {
		t.Fatalf("%+v", d)
	}
	if d := w.Charge(testDID, WritePointsUpdate, t0); !d.OK || d.Remaining != 0 {
		t.Fatalf("%+v", d)
	}
	// other accounts unaffected
	if d := w.Charge("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", 5000, t0); !d.OK {
		t.Fatalf("%+v", d)
	}
	// 7 hours of 5000 reach the day's 35000: the 8th hour is refused by the
	// day limit, until the day window (opened at t0) closes
	for h := 1; h < 7; h++ {
		if d := w.Charge(testDID, 5000, t0.Add(time.Duration(h)*time.Hour)); !d.OK {
			t.Fatalf("hour %d: %+v", h, d)
		}
	}
	at := t0.Add(7 * time.Hour)
	d := w.Charge(testDID, 1, at)
	if d.OK || d.Limit != 35000 || d.RetryAfter != 17*time.Hour || d.Window != 24*time.Hour {
		t.Fatalf("day limit: %+v", d)
	}
	if d := w.Charge(testDID, 1, t0.Add(24*time.Hour)); !d.OK {
		t.Fatalf("next day: %+v", d)
	}
}

func TestPresetLimiters(t *testing.T) {
	u := NewUpdateHandleLimiter(0)
	for i := 0; i < 10; i++ {
		if !u.Charge(string(testDID), 1, t0).OK {
			t.Fatal(i)
		}
	}
	if d := u.Charge(string(testDID), 1, t0); d.OK || d.RetryAfter != 5*time.Minute {
		t.Fatalf("%+v", d)
	}
	// 50/day: 5 windows of 10
	for w := 1; w < 5; w++ {
		for i := 0; i < 10; i++ {
			if d := u.Charge(string(testDID), 1, t0.Add(time.Duration(w)*5*time.Minute)); !d.OK {
				t.Fatalf("window %d: %+v", w, d)
			}
		}
	}
	if d := u.Charge(string(testDID), 1, t0.Add(25*time.Minute)); d.OK || d.Limit != 50 {
		t.Fatalf("%+v", d)
	}
	b := NewUploadBlobLimiter(0)
	for i := 0; i < 30; i++ {
		b.Charge("192.0.2.1", 1, t0)
	}
	if d := b.Charge("192.0.2.1", 1, t0); d.OK || d.Limit != 30 || d.RetryAfter != time.Minute {
		t.Fatalf("%+v", d)
	}
	if got := b.Limits(); len(got) != 2 || got[0] != LimitUploadBlobDay {
		t.Fatalf("%v", got)
	}
}
