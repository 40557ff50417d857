package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

// refCase is one call and the reference PDS's answer to it, recorded from
// its code (bluesky-social/atproto packages/pds and xrpc-server) and the
// lexicons: the status, the error name, and the shape of the body — each
// key listed must be there with that JSON type ("object", "array",
// "string", "boolean", "number"); "!key" must be absent. msg, if set, must
// be in the error message.
type refCase struct {
	name   string
	method string
	nsid   string
	query  url.Values
	body   any
	token  string // "user", "admin", or ""
	status int
	error  string
	msg    string
	shape  []string
}

// TestAnswersAsTheReference is the table of the shapes and names clients
// key on (issue 19): each method answered with the reference's status,
// error name and JSON shape.
func TestAnswersAsTheReference(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	env.CreateInvite("ref-invite", 5)
	user := env.CreateAccount()
	const nobody = "did:plc:nobodyhereatall00000000"
	cases := []refCase{
		{name: "describeServer", method: "GET", nsid: "com.atproto.server.describeServer", status: 200,
			shape: []string{"did:string", "availableUserDomains:array", "inviteCodeRequired:boolean", "links:object", "contact:object"}},
		{name: "a procedure with HEAD", method: "HEAD", nsid: "com.atproto.repo.createRecord", status: 400},
		{name: "createAccount", method: "POST", nsid: "com.atproto.server.createAccount", status: 200,
			body: map[string]any{"handle": "ref.test", "email": "ref@example.com", "password": "ref-password-1", "inviteCode": "ref-invite"},
			shape: []string{"accessJwt:string", "refreshJwt:string", "handle:string", "did:string", "didDoc:object",
				"didDoc.id:string", "didDoc.@context:array", "didDoc.alsoKnownAs:array", "didDoc.verificationMethod:array", "didDoc.service:array"}},
		{name: "createAccount with a did, no service auth", method: "POST", nsid: "com.atproto.server.createAccount", status: 401, error: "AuthenticationRequired",
			body: map[string]any{"handle": "mig.test", "email": "mig@example.com", "password": "mig-password-1", "inviteCode": "ref-invite", "did": nobody}},
		{name: "checkSignupQueue", method: "GET", nsid: "com.atproto.temp.checkSignupQueue", token: "user", status: 200, shape: []string{"activated:boolean"}},
		{name: "checkSignupQueue without a session", method: "GET", nsid: "com.atproto.temp.checkSignupQueue", status: 401, error: "AuthMissing"},
		{name: "describeRepo of an unknown repo", method: "GET", nsid: "com.atproto.repo.describeRepo", query: url.Values{"repo": {nobody}}, status: 400, error: "RepoNotFound"},
		{name: "getRecord of an unknown record", method: "GET", nsid: "com.atproto.repo.getRecord",
			query: url.Values{"repo": {user.DID.String()}, "collection": {"app.bsky.feed.post"}, "rkey": {"3jzfcijpj2z2a"}}, status: 400, error: "RecordNotFound"},
		{name: "getRecord of an unknown repo, no AppView", method: "GET", nsid: "com.atproto.repo.getRecord",
			query: url.Values{"repo": {nobody}, "collection": {"app.bsky.feed.post"}, "rkey": {"3jzfcijpj2z2a"}}, status: 400, error: "RecordNotFound"},
		{name: "listRecords of an unknown repo", method: "GET", nsid: "com.atproto.repo.listRecords",
			query: url.Values{"repo": {nobody}, "collection": {"app.bsky.feed.post"}}, status: 400, error: "InvalidRequest", msg: "Could not find repo"},
		{name: "a query with POST", method: "POST", nsid: "com.atproto.repo.getRecord", body: map[string]any{}, status: 400, error: "InvalidRequest",
			msg: "Incorrect HTTP method (POST) expected GET"},
		{name: "a procedure with GET", method: "GET", nsid: "com.atproto.repo.createRecord", status: 400, error: "InvalidRequest",
			msg: "Incorrect HTTP method (GET) expected POST"},
		{name: "an admin procedure with GET", method: "GET", nsid: "com.atproto.admin.updateSubjectStatus", token: "admin", status: 400, error: "InvalidRequest",
			msg: "Incorrect HTTP method (GET) expected POST"},
		{name: "a query served elsewhere, with POST", method: "POST", nsid: "app.bsky.feed.getTimeline", body: map[string]any{}, status: 400, error: "InvalidRequest",
			msg: "Incorrect HTTP method (POST) expected GET"},
		{name: "a method nobody serves", method: "GET", nsid: "com.example.nothing.here", status: 501, error: "MethodNotImplemented"},
		{name: "resolveHandle of an unknown local handle", method: "GET", nsid: "com.atproto.identity.resolveHandle", query: url.Values{"handle": {"nobody.test"}},
			status: 400, error: "HandleNotFound"},
		{name: "getAccountInfo", method: "GET", nsid: "com.atproto.admin.getAccountInfo", query: url.Values{"did": {user.DID.String()}}, token: "admin", status: 200,
			shape: []string{"did:string", "handle:string", "email:string", "indexedAt:string", "invites:array", "invitesDisabled:boolean", "!deactivatedAt", "!emailConfirmedAt"}},
		{name: "getAccountInfo of an unknown account", method: "GET", nsid: "com.atproto.admin.getAccountInfo", query: url.Values{"did": {nobody}}, token: "admin",
			status: 400, error: "NotFound"},
		{name: "getAccountInfos", method: "GET", nsid: "com.atproto.admin.getAccountInfos", query: url.Values{"dids": {user.DID.String(), nobody}}, token: "admin",
			status: 200, shape: []string{"infos:array"}},
		{name: "getSubjectStatus of an account", method: "GET", nsid: "com.atproto.admin.getSubjectStatus", query: url.Values{"did": {user.DID.String()}}, token: "admin",
			status: 200, shape: []string{"subject:object", "subject.$type:string", "subject.did:string", "takedown:object", "takedown.applied:boolean",
				"deactivated:object", "deactivated.applied:boolean"}},
		{name: "getSubjectStatus of nothing", method: "GET", nsid: "com.atproto.admin.getSubjectStatus", token: "admin", status: 400, error: "InvalidRequest",
			msg: "No provided subject"},
		{name: "getSubjectStatus of an unknown account", method: "GET", nsid: "com.atproto.admin.getSubjectStatus", query: url.Values{"did": {nobody}}, token: "admin",
			status: 400, error: "NotFound", msg: "Subject not found"},
		{name: "getInviteCodes", method: "GET", nsid: "com.atproto.admin.getInviteCodes", token: "admin", status: 200, shape: []string{"codes:array", "cursor:string"}},
		{name: "getInviteCodes, unknown sort", method: "GET", nsid: "com.atproto.admin.getInviteCodes", query: url.Values{"sort": {"nope"}}, token: "admin",
			status: 400, error: "InvalidRequest", msg: "unknown sort method: nope"},
		{name: "disableInviteCodes of the admin's", method: "POST", nsid: "com.atproto.admin.disableInviteCodes", body: map[string]any{"accounts": []string{"admin"}},
			token: "admin", status: 400, error: "InvalidRequest", msg: "cannot disable admin invite codes"},
		{name: "getAccountInviteCodes", method: "GET", nsid: "com.atproto.server.getAccountInviteCodes", token: "user", status: 200, shape: []string{"codes:array"}},
		{name: "updateSubjectStatus, takedown and activation at once", method: "POST", nsid: "com.atproto.admin.updateSubjectStatus", token: "admin",
			body: map[string]any{"subject": map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": user.DID}, "takedown": map[string]any{"applied": true},
				"deactivated": map[string]any{"applied": false}},
			status: 400, error: "InvalidRequest", msg: "Cannot activate and takedown an account at the same time"},
		{name: "updateSubjectStatus of an unknown subject type", method: "POST", nsid: "com.atproto.admin.updateSubjectStatus", token: "admin",
			body:   map[string]any{"subject": map[string]any{"$type": "com.example.thing"}, "takedown": map[string]any{"applied": true}},
			status: 400, error: "InvalidRequest", msg: "Invalid subject (com.example.thing)"},
		{name: "an admin method without the admin", method: "GET", nsid: "com.atproto.admin.getAccountInfo", query: url.Values{"did": {user.DID.String()}},
			token: "user", status: 401, error: "AuthenticationRequired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := ""
			switch c.token {
			case "user":
				tok = user.Token
			case "admin":
				tok = apitest.AdminAuth(apitest.AdminPassword)
			}
			r := env.Do(c.method, "/xrpc/"+c.nsid, c.query, tok, c.body)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			if c.method == http.MethodHead {
				return
			}
			var body map[string]any
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatalf("not a JSON object: %s", r.Body)
			}
			if c.error != "" && (body["error"] != c.error || !strings.Contains(body["message"].(string), c.msg)) {
				t.Fatalf("error %v %q, want %s %q", body["error"], body["message"], c.error, c.msg)
			}
			for _, s := range c.shape {
				if key, absent := strings.CutPrefix(s, "!"); absent {
					if _, ok := lookup(body, key); ok {
						t.Errorf("%s present: %s", key, r.Body)
					}
					continue
				}
				key, typ, _ := strings.Cut(s, ":")
				v, ok := lookup(body, key)
				if !ok || jsonType(v) != typ {
					t.Errorf("%s: %v (%s), want a %s: %s", key, v, jsonType(v), typ, r.Body)
				}
			}
		})
	}
}

// lookup follows a dotted path ("didDoc.id"; "@context" and "$type" are
// keys) through JSON objects.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case nil:
		return "null"
	}
	return "?"
}
