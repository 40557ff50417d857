package d1

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake answers with the statuses in order (then 200), recording bodies.
type fake struct {
	mu       sync.Mutex
	statuses []int
	headers  []map[string]string
	auth     []string
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	io.Copy(io.Discard, r.Body)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	st := http.StatusOK
	if len(f.statuses) > 0 {
		st = f.statuses[0]
		for k, v := range f.headers[0] {
			w.Header().Set(k, v)
		}
		f.statuses, f.headers = f.statuses[1:], f.headers[1:]
	}
	w.WriteHeader(st)
	if st == http.StatusOK {
		io.WriteString(w, `{"result":[{"results":[{"n":1}],"success":true,"meta":{"changes":0}}],"success":true,"errors":[],"messages":[]}`)
		return
	}
	io.WriteString(w, `{"result":null,"success":false,"errors":[{"code":7500,"message":"boom"}],"messages":[]}`)
}

func newTest(t *testing.T, f *fake, o Options) (*Client, *[]time.Duration) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	o.APIBase, o.AccountID, o.DatabaseID = srv.URL+"/client/v4", "acct", "db"
	if o.Token == "" {
		o.Token = "tok"
	}
	o.Logger = slog.New(slog.DiscardHandler)
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var sleeps []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		sleeps = append(sleeps, d)
		return nil
	}
	return c, &sleeps
}

// TestRetryAfter: a 429's retry-after is waited out (never less), 5xx
// waits are jittered under the backoff cap, and the request then succeeds.
func TestRetryAfter(t *testing.T) {
	f := &fake{statuses: []int{429, 503, 500}, headers: []map[string]string{{"Retry-After": "7"}, {}, {}}}
	c, sleeps := newTest(t, f, Options{Budget: -1, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	rows, err := c.Exec(t.Context(), "SELECT 1 AS n")
	if err != nil || len(rows) != 1 {
		t.Fatalf("Exec = %v, %v", rows, err)
	}
	if len(*sleeps) != 3 {
		t.Fatalf("slept %v, want 3 waits", *sleeps)
	}
	if s := (*sleeps)[0]; s < 7*time.Second || s > 7*time.Second+100*time.Millisecond {
		t.Errorf("after a 429 with retry-after 7 it waited %v", s)
	}
	// Attempts 2 and 3: caps of 200ms and 400ms (doubling from 100ms).
	if s := (*sleeps)[1]; s > 200*time.Millisecond {
		t.Errorf("backoff after attempt 2 %v, over its 200ms cap", s)
	}
	if s := (*sleeps)[2]; s > 400*time.Millisecond {
		t.Errorf("backoff after attempt 3 %v, over its 400ms cap", s)
	}
	if c.Requests() != 4 || c.Retries() != 3 {
		t.Errorf("%d requests, %d retries; want 4, 3", c.Requests(), c.Retries())
	}
	for _, a := range f.auth {
		if a != "Bearer tok" {
			t.Errorf("Authorization %q", a)
		}
	}
}

// TestGiveUp: after MaxAttempts failures the error is Temporary and says so.
func TestGiveUp(t *testing.T) {
	f := &fake{statuses: []int{502, 502, 502}, headers: []map[string]string{{}, {}, {}}}
	c, _ := newTest(t, f, Options{Budget: -1, MaxAttempts: 3})
	_, err := c.Exec(t.Context(), "SELECT 1")
	if err == nil || !Temporary(err) || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("err = %v", err)
	}
}

// TestFailFast: 400 is not retried and names the statements; 403 is ErrAuth.
func TestFailFast(t *testing.T) {
	f := &fake{statuses: []int{400, 403}, headers: []map[string]string{{}, {}}}
	c, sleeps := newTest(t, f, Options{Budget: -1, Token: "sekrit-token"})
	_, err := c.Batch(t.Context(), []Statement{{SQL: "INSERT INTO a VALUES (?)", Params: []string{"1"}}, {SQL: "SELECT 2"}})
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || Temporary(err) || !strings.Contains(err.Error(), "INSERT INTO a VALUES (?)") {
		t.Fatalf("400: %v", err)
	}
	_, err = c.Exec(t.Context(), "SELECT 1")
	if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "sekrit-token") {
		t.Fatalf("403: %v", err)
	}
	if len(*sleeps) != 0 {
		t.Fatalf("slept %v", *sleeps)
	}
}

// TestBudget: past its burst, the budget spaces requests at its rate.
func TestBudget(t *testing.T) {
	c, sleeps := newTest(t, &fake{}, Options{Budget: 20, BudgetWindow: 10 * time.Second}) // 2/s, burst 2
	for range 3 {
		if _, err := c.Exec(t.Context(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if len(*sleeps) == 0 {
		t.Fatal("the third request did not wait for the budget")
	}
	if s := (*sleeps)[0]; s < 400*time.Millisecond || s > 500*time.Millisecond {
		t.Fatalf("waited %v, want about 0.5s (one token at 2/s)", s)
	}
}
