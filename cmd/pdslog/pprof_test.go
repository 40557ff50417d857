package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// --pprof-addr serves Go's profiler on its own listener.
func TestPprofListener(t *testing.T) {
	addr, stop, err := listenPprof("127.0.0.1:0", discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("pprof index: %d %.200s", resp.StatusCode, b)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Fatal("pprof still served after stop")
	}
}
