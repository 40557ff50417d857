package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
)

// firstRead reports when the transport starts sending the request body,
// which with "Expect: 100-continue" happens only once the server's handler
// has begun reading it: the request is then in flight inside the server.
type firstRead struct {
	r    io.Reader
	once sync.Once
	ch   chan struct{}
}

func (f *firstRead) Read(p []byte) (int, error) {
	f.once.Do(func() { close(f.ch) })
	return f.r.Read(p)
}

// Shutdown drains: a write in flight when serve is told to stop (SIGTERM
// cancels the same context) completes and is acknowledged, every write
// acknowledged while writers race the shutdown survives the restart, and
// new connections are refused during the drain.
func TestServeGracefulShutdownDrainsWrites(t *testing.T) {
	plcSrv := plcserver.Start(t)
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--plc-url", plcSrv.URL, "--invite-required=false"}
	addr, _, stop := startServe(t, args...)
	base := "http://" + addr + "/xrpc/"
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	post := func(method, token string, body io.Reader, expect bool) (int, map[string]any, error) {
		req, _ := http.NewRequest("POST", base+method, body)
		req.Header.Set("Content-Type", "application/json")
		if expect {
			req.Header.Set("Expect", "100-continue")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, nil
	}
	jsonBody := func(v any) io.Reader { b, _ := json.Marshal(v); return bytes.NewReader(b) }
	st, acct, err := post("com.atproto.server.createAccount", "", jsonBody(map[string]any{"handle": "drain.test", "email": "d@example.com", "password": "hunter22hunter"}), false)
	if err != nil || st != 200 {
		stop()
		t.Fatalf("createAccount: %d %v %v", st, acct, err)
	}
	did, token := acct["did"].(string), acct["accessJwt"].(string)
	post1 := func(i int) map[string]any {
		return map[string]any{"repo": did, "collection": "app.bsky.feed.post",
			"record": map[string]any{"text": fmt.Sprintf("post %d", i), "createdAt": "2026-11-26T12:00:00.000Z"}}
	}

	// Writers that keep writing through the shutdown.
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		quit  = make(chan struct{})
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-quit:
					return
				default:
				}
				st, out, err := post("com.atproto.repo.createRecord", token, jsonBody(post1(w*1_000_000+i)), false)
				if err != nil {
					return // refused: the server stopped accepting
				}
				if st == 200 {
					mu.Lock()
					acked = append(acked, out["uri"].(string))
					mu.Unlock()
				} else if st >= 500 {
					t.Errorf("write during shutdown answered %d %v", st, out)
					return
				}
			}
		})
	}

	// One write whose body is held half-sent until the shutdown has begun.
	full, _ := json.Marshal(post1(-1))
	pr, pw := io.Pipe()
	started := &firstRead{r: pr, ch: make(chan struct{})}
	type result struct {
		st  int
		out map[string]any
		err error
	}
	slow := make(chan result, 1)
	go func() {
		st, out, err := post("com.atproto.repo.createRecord", token, started, true)
		slow <- result{st, out, err}
	}()
	go func() { _, _ = pw.Write(full[:len(full)/2]) }()
	<-started.ch

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	// The listener closes first: wait until new connections are refused.
	for {
		resp, err := http.Get("http://" + addr + "/xrpc/_health")
		if err != nil {
			break
		}
		resp.Body.Close()
		select {
		case <-stopped:
			t.Fatal("serve stopped while a request was still in flight")
		default:
		}
	}
	select {
	case <-stopped:
		t.Fatal("serve stopped while a request was still in flight")
	default:
	}
	if _, err := pw.Write(full[len(full)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-slow
	if r.err != nil || r.st != 200 {
		t.Fatalf("in-flight write during shutdown: %d %v %v", r.st, r.out, r.err)
	}
	<-stopped
	close(quit)
	wg.Wait()
	acked = append(acked, r.out["uri"].(string))

	// Every acknowledged write is there after a restart.
	addr, _, stop = startServe(t, args...)
	defer stop()
	for _, uri := range acked {
		u, err := syntax.ParseATURI(uri)
		if err != nil {
			t.Fatalf("uri %q: %v", uri, err)
		}
		q := url.Values{"repo": {u.Authority().String()}, "collection": {u.Collection().String()}, "rkey": {u.RecordKey().String()}}
		resp, err := http.Get("http://" + addr + "/xrpc/com.atproto.repo.getRecord?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("acknowledged %s missing after restart: %d", uri, resp.StatusCode)
		}
	}
	t.Logf("%d acknowledged writes all present after restart", len(acked))
}
