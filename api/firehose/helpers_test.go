package firehose_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/events"
	"github.com/coder/websocket"

	"github.com/pdslog/pdslog/api/apitest"
)

// TestMain quiets the default logger: indigo's verifiers log routine
// progress through it.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// frame is one received message, decoded with indigo's types.
type frame struct {
	raw []byte
	evt *events.XRPCStreamEvent
	typ string // "#commit", …, "#info", or "error"
	seq int64  // 0 for #info and error frames
}

// decodeFrame decodes a wire frame with indigo's events.XRPCStreamEvent
// (events.EventHeader + comatproto.SyncSubscribeRepos_*), refusing unknown
// types and trailing bytes.
func decodeFrame(raw []byte) (frame, error) {
	r := bytes.NewReader(raw)
	var evt events.XRPCStreamEvent
	if err := evt.Deserialize(r); err != nil {
		return frame{}, err
	}
	if r.Len() != 0 {
		return frame{}, fmt.Errorf("%d trailing bytes after the body", r.Len())
	}
	f := frame{raw: raw, evt: &evt}
	switch {
	case evt.RepoCommit != nil:
		f.typ, f.seq = "#commit", evt.RepoCommit.Seq
	case evt.RepoSync != nil:
		f.typ, f.seq = "#sync", evt.RepoSync.Seq
	case evt.RepoIdentity != nil:
		f.typ, f.seq = "#identity", evt.RepoIdentity.Seq
	case evt.RepoAccount != nil:
		f.typ, f.seq = "#account", evt.RepoAccount.Seq
	case evt.RepoInfo != nil:
		f.typ = "#info"
	case evt.Error != nil:
		f.typ = "error"
	default:
		return frame{}, errors.New("frame of unknown type")
	}
	return f, nil
}

// did returns the account a message is about.
func (f frame) did() string {
	switch {
	case f.evt.RepoCommit != nil:
		return f.evt.RepoCommit.Repo
	case f.evt.RepoSync != nil:
		return f.evt.RepoSync.Did
	case f.evt.RepoIdentity != nil:
		return f.evt.RepoIdentity.Did
	case f.evt.RepoAccount != nil:
		return f.evt.RepoAccount.Did
	}
	return ""
}

// stream is a subscriber that reads every frame in a goroutine.
type stream struct {
	t      testing.TB
	conn   *websocket.Conn
	mu     sync.Mutex
	frames []frame
	err    error         // why reading stopped
	notify chan struct{} // closed and replaced on every change
	done   chan struct{} // closed when reading stopped
}

// streamURL is the subscribeRepos URL of env's server; cursor < 0 means none.
func streamURL(base string, cursor int64) string {
	u := "ws" + strings.TrimPrefix(base, "http") + "/xrpc/com.atproto.sync.subscribeRepos"
	if cursor >= 0 {
		u += "?cursor=" + strconv.FormatInt(cursor, 10)
	}
	return u
}

// dial connects to subscribeRepos; cursor < 0 means none.
func dial(t testing.TB, env *apitest.Env, cursor int64) *websocket.Conn {
	t.Helper()
	return dialURL(t, streamURL(env.Server.URL, cursor), nil)
}

func dialURL(t testing.TB, u string, client *http.Client) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", u, err, resp)
	}
	conn.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

// subscribe connects and starts reading; cursor < 0 means none.
func subscribe(t testing.TB, env *apitest.Env, cursor int64) *stream {
	t.Helper()
	return read(t, dial(t, env, cursor))
}

// read starts reading conn in a goroutine.
func read(t testing.TB, conn *websocket.Conn) *stream {
	s := &stream{t: t, conn: conn, notify: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *stream) loop() {
	defer close(s.done)
	for {
		_, raw, err := s.conn.Read(context.Background())
		var f frame
		if err == nil {
			f, err = decodeFrame(raw)
			if err != nil {
				err = fmt.Errorf("decode frame %d: %w", len(s.snapshot()), err)
			}
		}
		s.mu.Lock()
		if err != nil {
			s.err = err
		} else {
			s.frames = append(s.frames, f)
		}
		close(s.notify)
		s.notify = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *stream) snapshot() []frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]frame(nil), s.frames...)
}

// waitFor waits until ok holds for the frames received so far, failing the
// test if reading stops first or the deadline passes.
func (s *stream) waitFor(what string, ok func([]frame) bool) []frame {
	s.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		fs, err, ch := append([]frame(nil), s.frames...), s.err, s.notify
		s.mu.Unlock()
		if ok(fs) {
			return fs
		}
		if err != nil {
			s.t.Fatalf("waiting for %s: stream ended after %d frames: %v", what, len(fs), err)
		}
		select {
		case <-ch:
		case <-deadline:
			s.t.Fatalf("waiting for %s: timed out after %d frames", what, len(fs))
		}
	}
}

// waitSeq waits until a frame with seq ≥ seq has arrived.
func (s *stream) waitSeq(seq int64) []frame {
	s.t.Helper()
	return s.waitFor(fmt.Sprintf("seq %d", seq), func(fs []frame) bool {
		return len(fs) > 0 && fs[len(fs)-1].seq >= seq
	})
}

// waitEnd waits until reading stops and returns the frames and the error.
func (s *stream) waitEnd() ([]frame, error) {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.t.Fatal("stream did not end")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]frame(nil), s.frames...), s.err
}

// lastPublic is the seq of the newest public event in env's log.
func lastPublic(t testing.TB, env *apitest.Env) int64 {
	t.Helper()
	it, err := env.Log.Iter(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var last int64
	for it.Next() {
		if it.Event().Kind.Public() {
			last = int64(it.Event().Seq)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return last
}

// checkSeqs fails unless seqs strictly increase.
func checkSeqs(t testing.TB, name string, fs []frame) {
	t.Helper()
	var prev int64
	for i, f := range fs {
		if f.seq == 0 {
			continue
		}
		if f.seq <= prev {
			t.Fatalf("%s: frame %d has seq %d after %d", name, i, f.seq, prev)
		}
		prev = f.seq
	}
}

// smallReadBuffer is an HTTP client whose connections have a small kernel
// receive buffer, so that a client that stops reading stalls the server's
// writes quickly.
func smallReadBuffer() *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		return c, err
	}}}
}
