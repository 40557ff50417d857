package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/projections/testenv"
)

// health asks addr for /xrpc/_health from a fresh connection (from the
// local address from, if set) and returns how long the 200 took.
func health(addr, from string, timeout time.Duration) (time.Duration, error) {
	d := net.Dialer{Timeout: timeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	start := time.Now()
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(start.Add(timeout))
	if _, err := fmt.Fprintf(conn, "GET /xrpc/_health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("_health: %d", resp.StatusCode)
	}
	return time.Since(start), nil
}

// openFDs counts a process's open file descriptors.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		testenv.Skip(t, "no /proc: %v", err) // only where the OS has none; CI is Linux
	}
	return len(ents)
}

// A burst of connections that exhausts the server's file descriptors
// (accept4: too many open files) stops accepting only while it lasts: once
// the connections are gone, the same process answers again, and the
// failure is logged once per streak, not once per retry (issue 14, item 1).
func TestServeAcceptsAgainAfterFDExhaustion(t *testing.T) {
	testenv.Slow(t, "runs a serve child process with a low RLIMIT_NOFILE")
	const nofile = 256
	log := &syncBuffer{}
	c := startChildEnv(t, []string{serveChildNofileEnv + fmt.Sprint("=", nofile), "PDSLOG_MAX_CONNS_PER_IP=0"}, log,
		"--data-dir", t.TempDir(), "--bind", "127.0.0.1", "--log-format", "json")
	if _, err := health(c.addr, "", 5*time.Second); err != nil {
		t.Fatalf("before the burst: %v", err)
	}
	// Every free descriptor and then some: the rest wait in the backlog.
	n := nofile - openFDs(t, c.cmd.Process.Pid) + 64
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for range n {
		conn, err := net.DialTimeout("tcp", c.addr, 2*time.Second)
		if err != nil {
			break // the backlog is full: the server is out of descriptors anyway
		}
		// A keep-alive request: an accepted connection then stays open, idle.
		fmt.Fprintf(conn, "GET /xrpc/_health HTTP/1.1\r\nHost: %s\r\n\r\n", c.addr)
		conns = append(conns, conn)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "too many open files") {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections did not exhaust %d descriptors (%d open); log:\n%s", len(conns), nofile, openFDs(t, c.cmd.Process.Pid), log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := health(c.addr, "", time.Second); err == nil {
		t.Fatal("_health answered with every descriptor in use")
	}
	time.Sleep(2 * time.Second) // retries at the longest backoff
	for _, conn := range conns {
		conn.Close()
	}
	conns = nil
	start := time.Now()
	for {
		_, err := health(c.addr, "", time.Second)
		if err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no _health 10 s after the connections closed: %v; log:\n%s", err, tail(log.String(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("accepting again %s after the connections closed", time.Since(start).Round(time.Millisecond))
	if got := strings.Count(log.String(), "too many open files"); got != 1 {
		t.Errorf("the accept failure was logged %d times, want once; log:\n%s", got, tail(log.String(), 20))
	}
	if !strings.Contains(log.String(), "accepting connections again") {
		t.Errorf("the recovery was not logged; log:\n%s", tail(log.String(), 20))
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
