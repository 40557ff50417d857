package plcserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestStart: the server comes up on loopback, answers as the reference
// PLC directory does, and is gone after Close.
func TestStart(t *testing.T) {
	s := plcserver.Start(t)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want http://127.0.0.1:<port>", s.URL)
	}
	code, body := get(t, s.URL+"/_health")
	if code != http.StatusOK || !strings.Contains(body, `"version"`) {
		t.Fatalf("/_health = %d %s", code, body)
	}
	code, body = get(t, s.URL+"/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	var e struct{ Message string }
	if code != http.StatusNotFound || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Message, "DID not registered") {
		t.Fatalf("unknown DID = %d %s, want 404 DID not registered", code, body)
	}
	s.Close()
	if _, err := http.Get(s.URL + "/_health"); err == nil {
		t.Fatal("server still answers after Close")
	}
}

// TestStartIsolated: two servers at once are distinct directories.
func TestStartIsolated(t *testing.T) {
	a, b := plcserver.Start(t), plcserver.Start(t)
	if a.URL == b.URL {
		t.Fatalf("both servers at %s", a.URL)
	}
}
