package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

func TestDescribeServer(t *testing.T) {
	env := apitest.New(t)
	r := env.Do("GET", "/xrpc/com.atproto.server.describeServer", nil, "", nil)
	var out struct {
		DID                  string   `json:"did"`
		AvailableUserDomains []string `json:"availableUserDomains"`
		InviteCodeRequired   bool     `json:"inviteCodeRequired"`
	}
	r.JSON(t, &out)
	if r.Status != 200 || out.DID != "did:web:localhost" || len(out.AvailableUserDomains) != 1 || out.AvailableUserDomains[0] != ".test" || !out.InviteCodeRequired {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}

func TestResolveHandleAndWellKnown(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	r := env.Do("GET", "/xrpc/com.atproto.identity.resolveHandle", url.Values{"handle": {strings.ToUpper(a.Handle.String())}}, "", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), a.DID.String()) {
		t.Fatalf("resolveHandle: %d %s", r.Status, r.Body)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.identity.resolveHandle", url.Values{"handle": {"nobody.test"}}, "", nil); r.Status != 400 || r.ErrorName() != "HandleNotFound" {
		t.Fatalf("unknown handle: %d %s", r.Status, r.Body)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.identity.resolveHandle", url.Values{"handle": {"not a handle"}}, "", nil); r.Status != 400 || r.ErrorName() != "InvalidRequest" {
		t.Fatalf("bad handle: %d %s", r.Status, r.Body)
	}
	// /.well-known/atproto-did answers by Host header
	req, _ := http.NewRequest("GET", env.Server.URL+"/.well-known/atproto-did", nil)
	req.Host = a.Handle.String()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 200)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body[:n]) != a.DID.String() {
		t.Fatalf("atproto-did: %d %q", resp.StatusCode, body[:n])
	}
	req.Host = "stranger.example.com"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("foreign host: %d", resp.StatusCode)
	}
	if r := env.Do("GET", "/.well-known/did.json", nil, "", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"serviceEndpoint":"http://localhost:2583"`) {
		t.Fatalf("did.json: %d %s", r.Status, r.Body)
	}
}

func TestMetricsAndRequestIDs(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	env.Do("GET", "/xrpc/com.atproto.identity.resolveHandle", url.Values{"handle": {a.Handle.String()}}, "", nil)
	env.Do("GET", "/xrpc/com.atproto.identity.resolveHandle", url.Values{"handle": {"nobody.test"}}, "", nil)
	r := env.Do("GET", "/xrpc/com.example.unknown", nil, "", nil)
	if r.Status != 501 || r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("unknown method: %d, request id %q", r.Status, r.Header.Get("X-Request-Id"))
	}
	// The metrics are the operator's (serve --metrics-addr), not on the
	// public listener.
	if m := env.Do("GET", "/metrics", nil, "", nil); m.Status != 404 {
		t.Fatalf("public /metrics: %d %s", m.Status, m.Body)
	}
	rec := httptest.NewRecorder()
	env.API.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`pdslog_http_request_duration_seconds_count{method="com.atproto.identity.resolveHandle",status="200"} 1`,
		`pdslog_http_request_duration_seconds_count{method="other",status="501"} 1`,
		`pdslog_xrpc_errors_total{error="HandleNotFound"} 1`,
		`pdslog_xrpc_errors_total{error="MethodNotImplemented"} 1`,
		`pdslog_projection_lag_events{projection="records"} 0`,
		`pdslog_log_head_seq `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// CORS is open by default, like the reference.
	req, _ := http.NewRequest("OPTIONS", env.Server.URL+"/xrpc/com.atproto.server.describeServer", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Fatalf("CORS allow origin %q", got)
	}
}
