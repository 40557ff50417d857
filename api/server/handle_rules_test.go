package server_test

import (
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

// TestHostedHandleRules: the reference's rules for handles under the
// service's domains (handle/index.ts ensureHandleServiceConstraints), on
// createAccount and updateHandle alike: one label in front of the domain,
// 3 to 18 characters, none of its reserved words. A refused handle writes
// nothing and touches no PLC document.
func TestHostedHandleRules(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("rules", 100)
	n := 0
	signup := func(handle string) *apitest.Response {
		n++
		return env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", map[string]any{"handle": handle,
			"email": "rules" + strings.Repeat("x", n) + "@example.com", "password": "pw-rules-123", "inviteCode": "rules"})
	}
	r := signup("carol.test")
	if r.Status != 200 {
		t.Fatalf("createAccount: %d %s", r.Status, r.Body)
	}
	var acct struct{ AccessJwt, DID string }
	r.JSON(t, &acct)
	update := func(handle string) *apitest.Response {
		return env.Do("POST", "/xrpc/com.atproto.identity.updateHandle", nil, acct.AccessJwt, map[string]any{"handle": handle})
	}
	refused := []struct{ handle, name, msg string }{
		{"ab.test", "InvalidHandle", "Handle too short"},
		{"a.test", "InvalidHandle", "Handle too short"},
		{"nineteen-characters.test", "InvalidHandle", "Handle too long"},
		{"two.labels.test", "InvalidHandle", "Invalid characters in handle"},
		{"admin.test", "HandleNotAvailable", "Reserved handle"},
		{"bsky.test", "HandleNotAvailable", "Reserved handle"},
		{"Support.test", "HandleNotAvailable", "Reserved handle"},
		{"contact-us.test", "HandleNotAvailable", "Reserved handle"},
	}
	for _, tc := range refused {
		head := env.Log.Head()
		for _, op := range []struct {
			name string
			do   func(string) *apitest.Response
		}{{"createAccount", signup}, {"updateHandle", update}} {
			if r := op.do(tc.handle); r.Status != 400 || r.ErrorName() != tc.name || !strings.Contains(r.Message(), tc.msg) {
				t.Errorf("%s %s: %d %s, want 400 %s %q", op.name, tc.handle, r.Status, r.Body, tc.name, tc.msg)
			}
		}
		if env.Log.Head() != head {
			t.Errorf("%s: a refused handle wrote to the log", tc.handle)
		}
	}
	for _, ok := range []string{"abc.test", "eighteen-chars-ok.test"} {
		if r := update(ok); r.Status != 200 {
			t.Errorf("updateHandle %s: %d %s", ok, r.Status, r.Body)
		}
	}
	if r := signup("xyz.test"); r.Status != 200 {
		t.Errorf("createAccount xyz.test: %d %s", r.Status, r.Body)
	}
}
