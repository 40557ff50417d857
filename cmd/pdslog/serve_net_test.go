package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// keptAlive makes a keep-alive _health request on a new connection from
// the local address from and returns the connection.
func keptAlive(t *testing.T, addr, from string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if err := healthOn(conn, br, addr); err != nil {
		conn.Close()
		t.Fatalf("_health from %s: %v", from, err)
	}
	return conn, br
}

// healthOn asks for _health on an open connection.
func healthOn(conn net.Conn, br *bufio.Reader, addr string) error {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(conn, "GET /xrpc/_health HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// closedBy reports whether the server closes conn within d.
func closedBy(conn net.Conn, br *bufio.Reader, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := br.ReadByte()
	return err == io.EOF
}

// An idle keep-alive connection is closed after PDSLOG_IDLE_TIMEOUT
// (issue 14, item 4: one stayed open 330 s+).
func TestServeClosesIdleConnections(t *testing.T) {
	t.Setenv("PDSLOG_IDLE_TIMEOUT", "1s")
	addr, _, stop := startServe(t, "--data-dir", t.TempDir(), "--bind", "127.0.0.1")
	defer stop()
	conn, br := keptAlive(t, addr, "")
	defer conn.Close()
	start := time.Now()
	if !closedBy(conn, br, 5*time.Second) {
		t.Fatalf("an idle connection still open after %s", time.Since(start).Round(time.Millisecond))
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Fatalf("closed after %s, before the idle timeout", took)
	}
}

// One address holds at most PDSLOG_MAX_CONNS_PER_IP connections; more are
// closed on accept, other addresses are served, and a closed connection
// frees its place (issue 14, item 4: 3,000 idle connections from one
// address were all kept).
func TestServeCapsConnectionsPerAddress(t *testing.T) {
	t.Setenv("PDSLOG_MAX_CONNS_PER_IP", "4")
	t.Setenv("PDSLOG_METRICS_ADDR", "127.0.0.1:0")
	var log eventlogtest.SyncBuffer
	addr, _, stop := startServeWith(t, func(c *serveCommand) { c.stderr = &log }, "--data-dir", t.TempDir(), "--bind", "127.0.0.1", "--log-format", "json")
	defer stop()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 4 {
		c, _ := keptAlive(t, addr, "127.0.0.2")
		held = append(held, c)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	// On loopback the reset of a refused connection can beat connect.
	if extra, err := d.Dial("tcp", addr); err == nil {
		if err := healthOn(extra, bufio.NewReader(extra), addr); err == nil {
			t.Fatal("a fifth connection from 127.0.0.2 was served")
		}
		extra.Close()
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	other, _ := keptAlive(t, addr, "127.0.0.1")
	held = append(held, other)
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := d.Dial("tcp", addr)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatal(err)
		}
		if err == nil && healthOn(c, bufio.NewReader(c), addr) == nil {
			held = append(held, c)
			break
		}
		if c != nil {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("no place for 127.0.0.2 after one of its connections closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m := scrapeMetrics(t, &log); !regexp.MustCompile(`pdslog_refused_total\{reason="conn_per_address"\} [1-9]`).MatchString(m) {
		t.Errorf("the refusal is not counted:\n%s", grepLines(m, "pdslog_refused_total"))
	}
}

// scrapeMetrics reads /metrics from the operator listener whose address
// serve logged.
func scrapeMetrics(t *testing.T, log *eventlogtest.SyncBuffer) string {
	t.Helper()
	var addr string
	for _, line := range strings.Split(log.String(), "\n") {
		var l struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "metrics serving" {
			addr = l.Addr
		}
	}
	if addr == "" {
		t.Fatalf("no metrics listener logged:\n%s", log.String())
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// /metrics is served on the operator listener (--metrics-addr), off by
// default, and never on the public port (issue 14, item 10).
func TestServeMetricsOnOperatorListener(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		var log eventlogtest.SyncBuffer
		addr, _, stop := startServeWith(t, func(c *serveCommand) { c.stderr = &log }, "--data-dir", t.TempDir(), "--bind", "127.0.0.1", "--log-format", "json")
		defer stop()
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("public /metrics: %d, want 404", resp.StatusCode)
		}
		if strings.Contains(log.String(), "metrics serving") {
			t.Fatal("a metrics listener without --metrics-addr")
		}
	})
	t.Run("PDSLOG_METRICS_ADDR", func(t *testing.T) {
		var log eventlogtest.SyncBuffer
		t.Setenv("PDSLOG_METRICS_ADDR", "127.0.0.1:0")
		_, _, stop := startServeWith(t, func(c *serveCommand) { c.stderr = &log }, "--data-dir", t.TempDir(), "--bind", "127.0.0.1", "--log-format", "json")
		defer stop()
		m := scrapeMetrics(t, &log)
		for _, want := range []string{"pdslog_log_head_seq ", `pdslog_refused_total{reason="rate_global"} 0`, "pdslog_accept_errors_total 0"} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}
