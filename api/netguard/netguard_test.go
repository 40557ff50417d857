package netguard

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

func TestExtractor(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}
	tests := []struct {
		name     string
		trusted  []netip.Prefix
		peer     string
		xff, xri []string
		want     string
	}{
		{"no proxies: headers ignored", nil, "192.0.2.1:5000", []string{"198.51.100.1"}, []string{"198.51.100.2"}, "192.0.2.1"},
		{"no proxies, loopback peer: headers ignored", nil, "127.0.0.1:5000", []string{"198.51.100.1"}, nil, "127.0.0.1"},
		{"untrusted peer: headers ignored", proxies, "192.0.2.1:5000", []string{"198.51.100.1"}, []string{"198.51.100.2"}, "192.0.2.1"},
		{"loopback is not trusted unless listed", proxies, "127.0.0.1:5000", []string{"198.51.100.1"}, nil, "127.0.0.1"},
		{"private ranges are not trusted unless listed", proxies, "192.168.1.1:5000", []string{"198.51.100.1"}, nil, "192.168.1.1"},
		{"trusted peer: the address it saw", proxies, "10.1.2.3:5000", []string{"198.51.100.1"}, nil, "198.51.100.1"},
		{"a forged left part is skipped", proxies, "10.1.2.3:5000", []string{"203.0.113.9, 198.51.100.1"}, nil, "198.51.100.1"},
		{"chained trusted proxies", proxies, "10.1.2.3:5000", []string{"203.0.113.9, 198.51.100.1, 10.9.9.9"}, nil, "198.51.100.1"},
		{"several header lines", proxies, "10.1.2.3:5000", []string{"203.0.113.9", "198.51.100.1"}, nil, "198.51.100.1"},
		{"garbage right of the client: the peer", proxies, "10.1.2.3:5000", []string{"not-an-ip"}, nil, "10.1.2.3"},
		{"X-Real-IP from a trusted peer", proxies, "10.1.2.3:5000", nil, []string{"198.51.100.2"}, "198.51.100.2"},
		{"X-Real-IP from an untrusted peer", proxies, "192.0.2.1:5000", nil, []string{"198.51.100.2"}, "192.0.2.1"},
		{"IPv6 proxy", proxies, "[2001:db8:1::5]:5000", []string{"2001:db8:9::1"}, nil, "2001:db8:9::1"},
		{"no headers: the peer", proxies, "10.1.2.3:5000", nil, nil, "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://pds/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.xri {
				r.Header.Add("X-Real-IP", v)
			}
			if got := Extractor(tt.trusted)(r); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 172.16.5.4 ,fd00::/8,::1,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "172.16.5.4/32", "fd00::/8", "::1/128"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                 "192.0.2.1",
		"::ffff:192.0.2.1":          "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":      "2001:db8:1:2::/64", // same /64, same key
		"fe80::1%eth0":              "fe80::/64",
		"not an address":            "not an address",
		"2001:db8:1:3::1":           "2001:db8:1:3::/64",
		"2001:0db8:0001:0002::abcd": "2001:db8:1:2::/64",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

// dialFrom connects to addr from the local address from.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// open reports whether the server kept c: it echoes a byte back on an
// accepted connection, and a refused one is closed.
func open(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte{1}); err != nil {
		return false
	}
	var b [1]byte
	_, err := io.ReadFull(c, b[:])
	return err == nil
}

// Over real sockets: each address gets max live connections; more are
// closed on accept; a closed one frees a place; another address and a
// trusted proxy are not affected.
func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan struct{}, 100)
	ln := LimitListener(raw, 3, []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}, func() { refused <- struct{}{} }).(*Listener)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // echo until closed
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	addr := raw.Addr().String()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 3 {
		c := dialFrom(t, "127.0.0.2", addr)
		held = append(held, c)
		if !open(c) {
			t.Fatalf("connection %d from 127.0.0.2 refused", i+1)
		}
	}
	// On loopback the reset of a refused connection can beat connect.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	if extra, err := d.Dial("tcp", addr); err == nil {
		if open(extra) {
			t.Fatal("a fourth connection from 127.0.0.2 was kept")
		}
		extra.Close()
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	select {
	case <-refused:
	case <-time.After(2 * time.Second):
		t.Fatal("the refusal was not counted")
	}
	for _, from := range []string{"127.0.0.1", "127.0.0.3"} {
		c := dialFrom(t, from, addr)
		if !open(c) {
			t.Fatalf("a connection from %s refused", from)
		}
		held = append(held, c)
	}
	for i := range 5 { // the trusted proxy has no cap
		c := dialFrom(t, "127.0.0.3", addr)
		if !open(c) {
			t.Fatalf("connection %d from the trusted proxy refused", i+2)
		}
		held = append(held, c)
	}
	held[0].Close()
	deadline := time.Now().Add(2 * time.Second)
	for ln.Live("127.0.0.2") > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("closing a connection did not free its place: %d live", ln.Live("127.0.0.2"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := dialFrom(t, "127.0.0.2", addr)
	held = append(held, c)
	if !open(c) {
		t.Fatal("no place after a connection closed")
	}
}
