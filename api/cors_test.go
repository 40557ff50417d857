package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

// A browser app on another origin can make authenticated calls: the
// preflight allows the headers it asks for by name, Authorization included
// (a "*" does not cover Authorization under the Fetch standard), as the
// reference PDS's cors() does; the answer carries the allowed origin.
func TestCORSAllowsAuthorization(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	asked := []string{"atproto-accept-labelers", "authorization", "content-type"}
	req, _ := http.NewRequest("OPTIONS", env.Server.URL+"/xrpc/com.atproto.server.getSession", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", strings.Join(asked, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("preflight: %d, allow origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	allowed := map[string]bool{}
	for _, h := range strings.Split(resp.Header.Get("Access-Control-Allow-Headers"), ",") {
		allowed[strings.ToLower(strings.TrimSpace(h))] = true
	}
	for _, h := range asked {
		if !allowed[h] {
			t.Errorf("preflight does not allow %s by name: Access-Control-Allow-Headers %q", h, resp.Header.Get("Access-Control-Allow-Headers"))
		}
	}

	req, _ = http.NewRequest("GET", env.Server.URL+"/xrpc/com.atproto.server.getSession", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Authorization", "Bearer "+a.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("getSession: %d, allow origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}
