package main

import (
	"slices"
	"testing"
)

// The handle nameserver settings: host or host:port, comma-separated,
// port 53 by default, IPv6 bracketed or bare.
func TestHandleNameservers(t *testing.T) {
	got, err := nameservers("PDSLOG_HANDLE_NAMESERVERS", " 192.0.2.1, 127.0.0.1:5353,[2001:db8::1]:53,::1,,ns.example.com")
	want := []string{"192.0.2.1:53", "127.0.0.1:5353", "[2001:db8::1]:53", "[::1]:53", "ns.example.com:53"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %v %v, want %v", got, err, want)
	}
	if got, err := nameservers("X", ""); err != nil || got != nil {
		t.Fatalf("empty: %v %v", got, err)
	}
	if _, err := nameservers("PDSLOG_HANDLE_NAMESERVERS", "host:"); err == nil {
		t.Fatal("a host with an empty port was accepted")
	}
}
