package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest/jsclient"
	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/identity/identitytest"
	"github.com/pdslog/pdslog/api/pds/mail/mailtest"
	"github.com/pdslog/pdslog/eventlog"
)

// jsclientSteps is every step client.mjs must run, in order: a script that
// skips or reorders one fails the test.
var jsclientSteps = []string{
	"describeServer",
	"createAccount.invalidHandle", "createAccount.unsupportedDomain", "createAccount.invalidInviteCode", "createAccount",
	"getSession", "login.handle", "login.email", "login.wrongPassword",
	"post", "post.mention", "createRecord", "putRecord.profile", "getRecord", "listRecords", "applyWrites", "deleteRecord",
	"error.recordNotFound", "error.invalidSwap", "error.badToken",
	"describeRepo", "resolveHandle",
	"createAppPassword", "login.appPassword",
	"refreshSession", "refreshSession.expiredToken", "deleteSession",
	"email.confirm", "password.reset", "email.authFactor", "login.authFactor",
	"summary",
}

// The official TypeScript client, @atproto/api 0.21.0, drives `pdslog
// serve` (with a real PLC directory) end to end through an invite the admin
// creates: signup, logins, writes, reads, pages, batches, swaps, typed
// errors, app passwords, token refresh (asked for, and forced by an expired
// token) and logout, each answer checked by the script, with no console
// output from the library and nothing a browser would block under CORS.
// Then the server is checked to hold exactly what the script wrote: over
// plain HTTP, and in the event log after shutdown.
func TestServeWithAtprotoAPI(t *testing.T) {
	plcSrv := plcserver.Start(t)
	// A real SMTP server takes serve's mail (configured by its setting, as
	// an operator would); the script reads the codes from its inbox.
	smtpSrv := mailtest.StartPlain(t)
	inbox := httptest.NewServer(smtpSrv.Inbox())
	defer inbox.Close()
	dir := t.TempDir()
	const jwtSecret, adminPassword = "jsclient-test-jwt-secret", "jsclient-admin"
	t.Setenv("PDS_EMAIL_SMTP_URL", smtpSrv.URL())
	// A handle hosted elsewhere, resolvable only by its DNS record (a
	// real DNS server serve is pointed at): the script mentions it.
	world := identitytest.StartWorld(t)
	const mentionHandle, mentionDID = "friend.elsewhere.social", "did:plc:friendelsewhere000000000"
	world.DNS.SetTXT(mentionHandle, "did="+mentionDID)
	t.Setenv("PDSLOG_HANDLE_NAMESERVERS", world.DNS.Addr)
	addr, _, stop := startServe(t, "--data-dir", dir, "--plc-url", plcSrv.URL, "--jwt-secret", jwtSecret, "--admin-password", adminPassword)
	running := true
	defer func() {
		if running {
			stop()
		}
	}()
	host := "http://" + addr

	req, _ := http.NewRequest("POST", host+"/xrpc/com.atproto.server.createInviteCode", strings.NewReader(`{"useCount":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", adminPassword)
	var invite struct{ Code string }
	if st := doJSON(t, req, &invite); st != http.StatusOK || invite.Code == "" {
		t.Fatalf("createInviteCode: %d %+v", st, invite)
	}

	steps := jsclient.Run(t, host, invite.Code, jsclient.Options{Handle: "jsclient.test", Email: "jsclient@example.com",
		Password: "jsclient-password-1", JWTSecret: jwtSecret, MailInbox: inbox.URL, MentionHandle: mentionHandle, MentionDID: mentionDID})
	if got := names(steps); !slices.Equal(got, jsclientSteps) {
		t.Fatalf("steps run:\n  %v\nwant:\n  %v", got, jsclientSteps)
	}
	summary, _ := jsclient.Find(steps, "summary")
	var sum struct {
		DID     string            `json:"did"`
		Handle  string            `json:"handle"`
		Records map[string]string `json:"records"` // at-uri -> cid
		Deleted []string          `json:"deleted"`
	}
	if err := summary.Decode(&sum); err != nil {
		t.Fatal(err)
	}
	did, err := syntax.ParseDID(sum.DID)
	if err != nil || sum.Handle != "jsclient.test" || len(sum.Records) < 8 || len(sum.Deleted) != 2 {
		t.Fatalf("summary: %+v (%v)", sum, err)
	}
	// What the script says the repo holds, as collection/rkey -> cid.
	want := map[string]string{}
	for uri, cid := range sum.Records {
		want[repoPath(t, uri, did)] = cid
	}

	// Over plain HTTP, unauthenticated: listRecords of each collection.
	have := map[string]string{}
	for _, coll := range []string{"app.bsky.feed.post", "app.bsky.actor.profile"} {
		q := url.Values{"repo": {did.String()}, "collection": {coll}, "limit": {"100"}}
		req, _ := http.NewRequest("GET", host+"/xrpc/com.atproto.repo.listRecords?"+q.Encode(), nil)
		var page struct {
			Records []struct{ URI, CID string }
		}
		if st := doJSON(t, req, &page); st != http.StatusOK {
			t.Fatalf("listRecords %s: %d", coll, st)
		}
		for _, r := range page.Records {
			have[repoPath(t, r.URI, did)] = r.CID
		}
	}
	if !maps.Equal(have, want) {
		t.Errorf("listRecords over HTTP:\n  %v\nthe script wrote:\n  %v", have, want)
	}

	// In the log: the account's commits, replayed, give the same records,
	// and each record the script deleted has a delete op.
	stop()
	running = false
	d, err := pds.Open(dir, &pds.Options{Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	it, err := d.Log.IterRepo(t.Context(), did, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	replayed := map[string]string{}
	deletes := map[string]bool{}
	commits := 0
	for it.Next() {
		ev := it.Event()
		if ev.Kind != eventlog.KindCommit {
			continue
		}
		commits++
		for _, op := range ev.Commit.Ops {
			switch op.Action {
			case eventlog.ActionCreate, eventlog.ActionUpdate:
				replayed[op.Path] = op.CID.String()
			case eventlog.ActionDelete:
				delete(replayed, op.Path)
				deletes[op.Path] = true
			}
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(replayed, want) {
		t.Errorf("records replayed from the log:\n  %v\nthe script wrote:\n  %v", replayed, want)
	}
	for _, uri := range sum.Deleted {
		if p := repoPath(t, uri, did); !deletes[p] {
			t.Errorf("no delete op for %s in the log", p)
		}
	}
	if commits < 10 {
		t.Errorf("%d commits in the log for %s", commits, did)
	}
}

// repoPath returns the collection/rkey of an at-uri in did's repo.
func repoPath(t *testing.T, uri string, did syntax.DID) string {
	t.Helper()
	u, err := syntax.ParseATURI(uri)
	if err != nil || u.Authority().String() != did.String() {
		t.Fatalf("record uri %q: not in %s (%v)", uri, did, err)
	}
	return u.Collection().String() + "/" + u.RecordKey().String()
}

func names(steps []jsclient.Step) []string {
	out := make([]string, 0, len(steps))
	for _, s := range steps {
		out = append(out, s.Name)
	}
	return out
}

// doJSON sends req and decodes a JSON answer into v; it returns the status.
func doJSON(t *testing.T, req *http.Request, v any) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(buf.Bytes(), v); err != nil {
			t.Fatalf("%s: %v: %s", req.URL.Path, err, buf.String())
		}
	}
	return resp.StatusCode
}
