package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/proxy/proxytest"
)

// payload is n bytes of a pattern that shows misplaced bytes.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>13)
	}
	return b
}

// readWithin reads exactly len(buf) bytes, failing the test if they do
// not come within d (a guard against hanging, not a timing assertion).
func readWithin(t *testing.T, r io.Reader, buf []byte, d time.Duration, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(r, buf); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: not received", what)
	}
}

// TestStreamingAndSizeLimit: an answer of exactly the 10 MiB limit is
// streamed (its first MiB reaches the client while the upstream is still
// holding back the rest, so the proxy does not buffer it); a larger one is
// refused up front when its length is declared and cut off when it is not.
func TestStreamingAndSizeLimit(t *testing.T) {
	env := proxytest.NewEnv(t, nil)
	alice := env.CreateUser()
	const limit = proxy.DefaultMaxResponseSize
	const first = 1 << 20
	body := payload(limit)
	release := make(chan struct{})
	env.AppView.Handle("app.bsky.test.big", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body[:first])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(body[first:])
	})
	resp := env.Send("GET", "/xrpc/app.bsky.test.big", nil, alice.Token, nil)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("big answer: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := make([]byte, first)
	readWithin(t, resp.Body, got, 30*time.Second, "the first MiB while the upstream holds the rest")
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got = append(got, rest...); !bytes.Equal(got, body) {
		t.Fatalf("streamed %d bytes, not the %d sent", len(got), len(body))
	}

	// One byte over, no length declared: the client gets a broken answer,
	// never one that looks whole.
	env.AppView.Handle("app.bsky.test.over", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for off := 0; off <= limit; off += first {
			_, _ = w.Write(append(body, 0)[off:min(off+first, limit+1)])
			w.(http.Flusher).Flush()
		}
	})
	resp = env.Send("GET", "/xrpc/app.bsky.test.over", nil, alice.Token, nil)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(b) > limit {
		t.Fatalf("over-limit stream: read %d bytes, err %v", len(b), err)
	}

	// Declared too large: refused before anything is relayed.
	env.AppView.Handle("app.bsky.test.declared", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		w.Header().Set("Content-Length", strconv.Itoa(limit+1))
		_, _ = w.Write(append(body, 0))
	})
	r := env.Request("GET", "/xrpc/app.bsky.test.declared", nil, alice.Token, nil)
	if name, msg := errorName(t, r.Body); r.Status != 502 || name != "UpstreamFailure" || !strings.Contains(msg, "larger than 10485760 bytes") {
		t.Fatalf("declared over-limit: %d %s", r.Status, r.Body)
	}
}

// TestTimeouts: an upstream that never sends its headers, or stalls
// mid-body, does not hold the client: 502 for the first, a broken answer
// for the second.
func TestTimeouts(t *testing.T) {
	env := proxytest.NewEnv(t, func(c *proxy.Config) {
		c.HeadersTimeout = 300 * time.Millisecond
		c.BodyTimeout = 300 * time.Millisecond
	})
	alice := env.CreateUser()
	stop := make(chan struct{})
	defer close(stop)
	env.AppView.Handle("app.bsky.test.silent", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	})
	env.AppView.Handle("app.bsky.test.stall", func(w http.ResponseWriter, r *http.Request, c *proxytest.Call) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"feed":[`))
		w.(http.Flusher).Flush()
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	})
	r := env.Request("GET", "/xrpc/app.bsky.test.silent", nil, alice.Token, nil)
	if name, msg := errorName(t, r.Body); r.Status != 502 || name != "UpstreamFailure" || !strings.Contains(msg, "did not answer within 300ms") {
		t.Fatalf("silent upstream: %d %s", r.Status, r.Body)
	}
	resp := env.Send("GET", "/xrpc/app.bsky.test.stall", nil, alice.Token, nil)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err == nil || string(b) != `{"feed":[` {
		t.Fatalf("stalled upstream: %d %q %v", resp.StatusCode, b, err)
	}
}
