package jsclient_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest/jsclient"
	"github.com/pdslog/pdslog/projections/testenv"
)

// The full run against pdslog is cmd/pdslog's TestServeWithAtprotoAPI; these
// tests check that the harness reports failures rather than hiding them.

func names(steps []jsclient.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Name)
	}
	return out
}

// Nothing listening: the first step fails, nothing after it runs, and the
// run fails as a whole.
func TestExecStopsAtFirstFailure(t *testing.T) {
	testenv.Slow(t, "runs npm/Node.js")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	r, err := jsclient.Exec(t.Context(), url, "some-invite", jsclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Err == nil || len(r.Steps) != 1 || r.Steps[0].Name != "describeServer" || r.Steps[0].OK {
		t.Fatalf("err %v, steps %v\nstdout:\n%s\nstderr:\n%s", r.Err, names(r.Steps), r.Stdout, r.Stderr)
	}
}

func TestExecNeedsArguments(t *testing.T) {
	testenv.Slow(t, "runs npm/Node.js")
	r, err := jsclient.Exec(t.Context(), "", "", jsclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Err == nil || len(r.Steps) != 1 || r.Steps[0].Name != "args" || r.Steps[0].OK {
		t.Fatalf("err %v, steps %v\n%s", r.Err, names(r.Steps), r.Stdout)
	}
}

// describeServer serves one XRPC method, with or without CORS headers.
func describeServer(cors bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if cors {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
		if r.Method == http.MethodOptions {
			if cors {
				w.Header().Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.URL.Path != "/xrpc/com.atproto.server.describeServer" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotImplemented)
			w.Write([]byte(`{"error":"MethodNotImplemented"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"did": "did:web:example.test", "availableUserDomains": []string{".test"}, "inviteCodeRequired": true})
	}
}

// A server a browser could not call (no CORS headers) fails the step that
// called it, though its answers are right.
func TestExecFailsWhatABrowserWouldBlock(t *testing.T) {
	testenv.Slow(t, "runs npm/Node.js")
	srv := httptest.NewServer(describeServer(false))
	defer srv.Close()
	r, err := jsclient.Exec(t.Context(), srv.URL, "some-invite", jsclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Err == nil || len(r.Steps) != 1 || r.Steps[0].OK || !strings.Contains(string(r.Steps[0].Error), "CORS") {
		t.Fatalf("err %v, steps %v\n%s", r.Err, names(r.Steps), r.Stdout)
	}
	// With CORS headers the same answer passes, and the run stops at the
	// next step, which this server does not serve.
	srv2 := httptest.NewServer(describeServer(true))
	defer srv2.Close()
	r, err = jsclient.Exec(t.Context(), srv2.URL, "some-invite", jsclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(r.Steps); r.Err == nil || len(got) != 2 || !r.Steps[0].OK || r.Steps[1].OK || got[1] != "createAccount.invalidHandle" {
		t.Fatalf("err %v, steps %v\n%s", r.Err, got, r.Stdout)
	}
}
