package mirror_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/pdslog/pdslog/projections/mirror"
	"github.com/pdslog/pdslog/projections/mirror/d1"
	"github.com/pdslog/pdslog/projections/mirror/d1/d1test"
)

// faulty is an HTTP proxy in front of the D1 emulator that fails some
// requests: 429 with retry-after, 500 and 503 without reaching D1, and
// 502 after D1 applied the request (the answer lost on the way back).
type faulty struct {
	*httptest.Server
	mu       sync.Mutex
	n        int
	injected map[int]int // status -> count
	after    int         // 502s sent after D1 applied the request
}

func startFaulty(t testing.TB, e *d1test.Emulator) *faulty {
	t.Helper()
	u, err := url.Parse(e.APIBase)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	f := &faulty{injected: map[int]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.n++
		n := f.n
		f.mu.Unlock()
		// Every third request fails one way or another; the retry of a
		// failed one (the next request) goes through.
		switch n % 12 {
		case 1:
			f.count(http.StatusTooManyRequests)
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"result":null,"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"messages":[]}`, http.StatusTooManyRequests)
			return
		case 4:
			f.count(http.StatusInternalServerError)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		case 7:
			f.count(http.StatusServiceUnavailable)
			w.Header().Set("Retry-After", "0")
			http.Error(w, "<html>unavailable</html>", http.StatusServiceUnavailable)
			return
		case 10:
			// Let D1 apply it, then lose the answer.
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			f.mu.Lock()
			f.after++
			f.mu.Unlock()
			f.count(http.StatusBadGateway)
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *faulty) count(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.injected[status]++
}

// TestRetriesLoseNothing: with 429s, 500s, 503s and 502s after D1 applied
// the request injected between the mirror and D1, every failed request is
// retried and the mirror ends equal to the local projections.
func TestRetriesLoseNothing(t *testing.T) {
	w := newWorld(t, t.TempDir(), 4, 3)
	defer w.log.Close()
	localBlobs.Store(w.log, w.store)
	tg := newTarget(t)
	f := startFaulty(t, emu)
	tg.apiBase = f.URL + "/client/v4"
	db := tg.client(t, nil)
	m := tg.mirror(t, db, w.store, func(o *mirror.Options) { o.MaxStatements = 16 })
	for phase := range 3 {
		w.build(t, 50, phase == 1)
		if phase == 2 {
			w.flush()
		}
		if err := catchUp(t.Context(), w.log, m, 100); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	t.Logf("%d requests through the proxy; injected %v (%d after D1 applied them); %d retries", f.n, f.injected, f.after, db.Retries())
	for _, st := range []int{429, 500, 502, 503} {
		if f.injected[st] == 0 {
			t.Errorf("no %d injected", st)
		}
	}
	f.mu.Unlock()
	if db.Retries() == 0 {
		t.Error("nothing retried")
	}
	tg.apiBase = emu.APIBase
	checkMirror(t, w.log, tg.client(t, nil), tg.r2, testInline)
}

// TestSQLErrorFailsFast: a statement D1 refuses (400) is not retried, and
// the error carries the statement.
func TestSQLErrorFailsFast(t *testing.T) {
	tg := newTarget(t)
	db := tg.client(t, nil)
	_, err := db.Batch(t.Context(), []d1.Statement{{SQL: "SELECT 1"}, {SQL: "INSERT INTO no_such_table (a) VALUES (?)", Params: []string{"1"}}})
	if err == nil {
		t.Fatal("no error")
	}
	if d1.Temporary(err) || db.Retries() != 0 {
		t.Errorf("a SQL error was retried or called temporary: %v", err)
	}
	for _, want := range []string{"HTTP 400", "7500", "no such table: no_such_table", "INSERT INTO no_such_table (a) VALUES (?)"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Over D1's limits: refused before sending.
	params := make([]string, 101)
	if _, err := db.Batch(t.Context(), []d1.Statement{{SQL: "SELECT 1", Params: params}}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("101 parameters")) {
		t.Errorf("101 parameters: %v", err)
	}
	if n := db.Requests(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
