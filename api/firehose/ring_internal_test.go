package firehose

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

func entries(from, to eventlog.Seq, size int) []ringEntry {
	var es []ringEntry
	for s := from; s <= to; s++ {
		es = append(es, ringEntry{seq: s, frame: bytes.Repeat([]byte{byte(s)}, size)})
	}
	return es
}

// takeAll takes every frame the ring holds after after.
func takeAll(r *ring, after eventlog.Seq) ([][]byte, eventlog.Seq, bool) {
	var out [][]byte
	for {
		next, tip, ok := r.take(after, &out, 1000, 1<<30)
		if !ok || tip != nil {
			return out, next, ok
		}
		after = next
	}
}

// The ring keeps the newest seqs within its bounds, serves positions inside
// it and refuses ones behind or ahead; a chunk read before a purge is
// refused, and a purge empties it before anything more is served.
func TestRingBoundsAndPurges(t *testing.T) {
	var purges atomic.Uint64
	var resets int
	r := newRing(8, 1<<20, purges.Load, func() { resets++ })
	if !r.publish(0, 0, entries(1, 10, 10)) {
		t.Fatal("publish refused")
	}
	if r.lo != 2 || r.hi != 10 {
		t.Fatalf("ring holds (%d, %d], want (2, 10]", r.lo, r.hi)
	}
	if _, _, ok := takeAll(r, 1); ok {
		t.Fatal("a position behind the ring was served")
	}
	if _, _, ok := takeAll(r, 11); ok {
		t.Fatal("a position ahead of the ring was served")
	}
	got, next, ok := takeAll(r, 4)
	if !ok || next != 10 || len(got) != 6 || got[0][0] != 5 || got[5][0] != 10 {
		t.Fatalf("take after 4: %d frames to %d, ok %v", len(got), next, ok)
	}
	// Byte budget: 3 frames of 100 bytes fit in 250 only as the newest 2.
	rb := newRing(8, 250, purges.Load, func() {})
	rb.publish(0, 0, entries(1, 3, 100))
	if rb.lo != 1 || rb.hi != 3 || rb.bytes != 200 {
		t.Fatalf("byte-bounded ring holds (%d, %d] in %d bytes", rb.lo, rb.hi, rb.bytes)
	}

	purges.Add(1)
	// The tail read 11 under the old count: refused, ring emptied at 10.
	if r.publish(0, 10, entries(11, 11, 10)) {
		t.Fatal("a chunk read before a purge was accepted")
	}
	if _, _, ok := takeAll(r, 4); ok {
		t.Fatal("ring served frames read before a purge")
	}
	if !r.publish(1, 10, entries(11, 11, 10)) {
		t.Fatal("publish after the purge refused")
	}
	if got, _, ok := takeAll(r, 10); !ok || len(got) != 1 || got[0][0] != 11 {
		t.Fatalf("after the purge: %d frames, ok %v", len(got), ok)
	}
	// A purge noticed by a reader empties it too.
	purges.Add(1)
	if got, _, ok := takeAll(r, 10); ok || len(got) != 0 {
		t.Fatalf("ring served %d frames after a purge (ok %v)", len(got), ok)
	}
	if got, _, ok := takeAll(r, 11); !ok || len(got) != 0 {
		t.Fatalf("at the newest seq: %d frames, ok %v; want none, ok", len(got), ok)
	}
	if r.lo != 11 || r.hi != 11 || resets != 2 {
		t.Fatalf("ring (%d, %d], %d resets", r.lo, r.hi, resets)
	}
}

// Over a real log: once Purge has returned, a subscriber whose position is
// inside the ring (it would have been served the purged account's frames
// from memory) gets none of them, from the ring or from the log.
func TestRingPurgeOverLog(t *testing.T) {
	log := eventlogtest.Open(t, nil)
	h := New(&Options{Log: log, Logger: slog.New(slog.DiscardHandler)})
	a := eventlogtest.NewRepo("did:plc:purgedpurgedpurgedpurged")
	b := eventlogtest.NewRepo("did:plc:keptkeptkeptkeptkeptkept")
	clock := eventlogtest.NewClock()
	ctx := context.Background()
	if _, err := log.Append(ctx, a.Commit(clock, nil, 100), b.Commit(clock, nil, 100), a.Commit(clock, nil, 100), b.Commit(clock, nil, 100)); err != nil {
		t.Fatal(err)
	}
	s := &subscriber{h: h, ctx: ctx}
	if !h.register(s) { // starts the shared tail at the head (4)
		t.Fatal("register refused")
	}
	t.Cleanup(func() {
		h.unregister(s)
		if err := h.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	// The tail started at 4: new events 5..8 (a, b, a, b) enter the ring.
	head, err := log.Append(ctx, a.Commit(clock, nil, 100), b.Commit(clock, nil, 100), a.Commit(clock, nil, 100), b.Commit(clock, nil, 100))
	if err != nil {
		t.Fatal(err)
	}
	waitRing(t, h, head)
	if got, _, ok := takeAll(h.ring, 4); !ok || len(got) != 4 {
		t.Fatalf("before the purge the ring served %d frames (ok %v), want 4", len(got), ok)
	}
	if n := log.Purges(); n != 0 {
		t.Fatalf("%d purges before any", n)
	}
	if n, err := log.Purge(ctx, a.DID, head+1); err != nil || n != 4 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if n := log.Purges(); n != 1 {
		t.Fatalf("%d purges counted once Purge returned, want 1", n)
	}
	// The ring no longer serves position 4: the subscriber reads the log.
	var batch [][]byte
	if _, _, ok := h.ring.take(4, &batch, 100, 1<<30); ok || len(batch) != 0 {
		t.Fatalf("after the purge the ring served %d frames (ok %v)", len(batch), ok)
	}
	after, more, err := s.read(4, &batch)
	if err != nil || more || after != head || len(batch) != 2 {
		t.Fatalf("log read after the purge: %d frames to %d (more %v), %v", len(batch), after, more, err)
	}
	for _, f := range batch {
		if bytes.Contains(f, []byte(a.DID)) {
			t.Fatal("a purged account's frame was read")
		}
	}
	// The tail goes on: the next event is served from the ring.
	last, err := log.Append(ctx, b.Commit(clock, nil, 100))
	if err != nil {
		t.Fatal(err)
	}
	waitRing(t, h, last)
	if got, _, ok := takeAll(h.ring, head); !ok || len(got) != 1 || bytes.Contains(got[0], []byte(a.DID)) {
		t.Fatalf("after the purge the ring served %d frames (ok %v), want b's one", len(got), ok)
	}
	if h.ring.lo > head {
		t.Fatalf("ring starts at %d, want it to hold %d", h.ring.lo, last)
	}
}

// waitRing waits until the shared tail has published seq.
func waitRing(t *testing.T, h *Handler, seq eventlog.Seq) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.ring.mu.Lock()
		hi, ch := h.ring.hi, h.ring.notify
		h.ring.mu.Unlock()
		if hi >= seq {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("ring at %d, waiting for %d", hi, seq)
		}
	}
}

// countConn counts the writes that reach the connection.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A corked connection sends everything held in one write on uncork, in
// order; uncorked writes go straight through; an uncork that cannot
// complete by its deadline fails and closes the connection.
func TestCorkConn(t *testing.T) {
	server, client := net.Pipe()
	cc := &countConn{Conn: server}
	c := &corkConn{Conn: cc}
	got := make(chan []byte, 16)
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, err := client.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "ping" || cc.writes.Load() != 1 {
		t.Fatalf("uncorked write: %q after %d writes", b, cc.writes.Load())
	}
	c.cork()
	for _, p := range []string{"a", "bb", "ccc"} {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if cc.writes.Load() != 1 {
		t.Fatalf("corked writes reached the connection (%d writes)", cc.writes.Load())
	}
	if err := c.uncork(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "abbccc" || cc.writes.Load() != 2 {
		t.Fatalf("uncork sent %q after %d writes, want one write of abbccc", b, cc.writes.Load())
	}

	// Nobody reads: the flush gives up at its deadline and closes.
	server2, client2 := net.Pipe()
	defer client2.Close()
	c2 := &corkConn{Conn: server2}
	c2.cork()
	_, _ = c2.Write([]byte("stuck"))
	err := c2.uncork(time.Now().Add(20 * time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("uncork to a stalled peer: %v, want a deadline error", err)
	}
	if _, err := c2.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write after a failed flush: %v, want closed", err)
	}
}
