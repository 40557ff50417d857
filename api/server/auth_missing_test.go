package server_test

import (
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

// A call that needs credentials and carries none is refused as the
// reference refuses it: 401 AuthMissing (a logged-out client's calls).
func TestNoCredentialsIsAuthMissing(t *testing.T) {
	env := apitest.New(t)
	for _, c := range []struct{ method, nsid string }{
		{"GET", "com.atproto.server.getSession"},
		{"POST", "com.atproto.server.refreshSession"},
		{"POST", "com.atproto.server.deleteSession"},
		{"POST", "com.atproto.server.createAppPassword"},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"name": "x"}
		}
		r := env.Do(c.method, "/xrpc/"+c.nsid, nil, "", body)
		if r.Status != 401 || r.ErrorName() != "AuthMissing" {
			t.Errorf("%s without credentials: %d %s", c.nsid, r.Status, r.Body)
		}
	}
}
