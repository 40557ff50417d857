package server_test

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/mail"
	"github.com/pdslog/pdslog/api/pds/mail/mailtest"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/eventlog/events"
)

var codeRe = regexp.MustCompile(`[A-Z2-7]{5}-[A-Z2-7]{5}`)

// mailEnv is a server mailing through a real SMTP server on loopback.
func mailEnv(t *testing.T) (*apitest.Env, *mailtest.Server) {
	t.Helper()
	srv := mailtest.Start(t)
	env := apitest.NewPDS(t, func(o *pds.Options) {
		s, err := mail.NewSMTP(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		s.TLS, s.RequireTLS = srv.TLS, true
		o.Mail, o.MailFrom, o.MailBackoff = s, "PDS <noreply@pds.example>", 20*time.Millisecond
	})
	return env, srv
}

func emailOf(a *apitest.Account) string { return strings.TrimPrefix(a.Handle.String(), "") }

// code waits for the message to addr with subject, checks the code is in
// both parts and the service is named, and returns the code.
func code(t *testing.T, srv *mailtest.Server, addr, subject string) string {
	t.Helper()
	m := srv.Wait(addr, subject)
	c := codeRe.FindString(m.Text)
	if c == "" || !strings.Contains(m.HTML, c) || !strings.Contains(m.Text, apitest.Service.Hostname) {
		t.Fatalf("message %q to %s: code %q, text\n%s\nhtml\n%s", m.Subject, addr, c, m.Text, m.HTML)
	}
	return c
}

func post(env *apitest.Env, nsid, token string, body any) *apitest.Response {
	return env.Do("POST", "/xrpc/"+nsid, nil, token, body)
}

func want(t *testing.T, r *apitest.Response, status int, name string) {
	t.Helper()
	if r.Status != status || (name != "" && r.ErrorName() != name) {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, name)
	}
}

type sessionInfo struct {
	Email           string `json:"email"`
	EmailConfirmed  bool   `json:"emailConfirmed"`
	EmailAuthFactor bool   `json:"emailAuthFactor"`
}

func session(t *testing.T, env *apitest.Env, tok string) sessionInfo {
	t.Helper()
	r := env.Do("GET", "/xrpc/com.atproto.server.getSession", nil, tok, nil)
	want(t, r, 200, "")
	var s sessionInfo
	r.JSON(t, &s)
	return s
}

func confirm(t *testing.T, env *apitest.Env, srv *mailtest.Server, a *apitest.Account, addr string) {
	t.Helper()
	want(t, post(env, "com.atproto.server.requestEmailConfirmation", a.Token, nil), 200, "")
	c := code(t, srv, addr, "Email Confirmation")
	want(t, post(env, "com.atproto.server.confirmEmail", a.Token, map[string]string{"email": addr, "token": c}), 200, "")
}

func TestConfirmEmail(t *testing.T) {
	env, srv := mailEnv(t)
	a := env.CreateAccount()
	addr := "user1@example.com"
	want(t, post(env, "com.atproto.server.requestEmailConfirmation", a.Token, nil), 200, "")
	c := code(t, srv, addr, "Email Confirmation")
	confirmWith := func(email, token string) *apitest.Response {
		return post(env, "com.atproto.server.confirmEmail", a.Token, map[string]string{"email": email, "token": token})
	}
	want(t, confirmWith(addr, "AAAAA-AAAAA"), 400, "InvalidToken")
	want(t, confirmWith("other@example.com", c), 400, "InvalidEmail")
	// A code of another purpose does not confirm.
	want(t, post(env, "com.atproto.server.requestPasswordReset", "", map[string]string{"email": addr}), 200, "")
	reset := code(t, srv, addr, "Password Reset")
	want(t, confirmWith(addr, reset), 400, "InvalidToken")
	if s := session(t, env, a.Token); s.EmailConfirmed {
		t.Fatal("confirmed by a wrong code")
	}
	want(t, confirmWith(strings.ToUpper(addr), strings.ToLower(c)), 200, "") // case-insensitive
	if s := session(t, env, a.Token); !s.EmailConfirmed || s.Email != addr {
		t.Fatalf("after confirming: %+v", s)
	}
	want(t, confirmWith(addr, c), 400, "InvalidToken") // single use
	// A replay of the log leaves the used code used.
	if err := env.Runner.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	want(t, confirmWith(addr, c), 400, "InvalidToken")
	if s := session(t, env, a.Token); !s.EmailConfirmed {
		t.Fatal("rebuild lost the confirmation")
	}
	// A new request replaces the old code; an expired one is refused.
	want(t, post(env, "com.atproto.server.requestEmailConfirmation", a.Token, nil), 200, "")
	first := code(t, srv, addr, "Email Confirmation")
	want(t, post(env, "com.atproto.server.requestEmailConfirmation", a.Token, nil), 200, "")
	second := code(t, srv, addr, "Email Confirmation")
	want(t, confirmWith(addr, first), 400, "InvalidToken")
	env.Clock.Add(16 * time.Minute)
	want(t, confirmWith(addr, second), 400, "ExpiredToken")
}

func TestUpdateEmail(t *testing.T) {
	env, srv := mailEnv(t)
	a := env.CreateAccount()
	b := env.CreateAccount()
	old := "user1@example.com"
	update := func(body map[string]any) *apitest.Response {
		return post(env, "com.atproto.server.updateEmail", a.Token, body)
	}
	// Unconfirmed: no code needed.
	r := post(env, "com.atproto.server.requestEmailUpdate", a.Token, nil)
	want(t, r, 200, "")
	if !strings.Contains(string(r.Body), `"tokenRequired":false`) {
		t.Fatalf("unconfirmed: %s", r.Body)
	}
	want(t, update(map[string]any{"email": "bad\r\nBcc: x@evil.example"}), 400, "InvalidRequest")
	want(t, update(map[string]any{"email": "user2@example.com"}), 400, "InvalidRequest") // b's address
	want(t, update(map[string]any{"email": "new1@example.com"}), 200, "")
	old = "new1@example.com"
	confirm(t, env, srv, a, old)
	// Confirmed: the code goes to the old address and is required.
	r = post(env, "com.atproto.server.requestEmailUpdate", a.Token, nil)
	if !strings.Contains(string(r.Body), `"tokenRequired":true`) {
		t.Fatalf("confirmed: %s", r.Body)
	}
	c := code(t, srv, old, "Email Update")
	want(t, update(map[string]any{"email": "new2@example.com"}), 400, "TokenRequired")
	want(t, update(map[string]any{"email": "new2@example.com", "token": "ZZZZZ-ZZZZZ"}), 400, "InvalidToken")
	want(t, update(map[string]any{"email": "new2@example.com", "token": c}), 200, "")
	if s := session(t, env, a.Token); s.Email != "new2@example.com" || s.EmailConfirmed {
		t.Fatalf("after update: %+v", s)
	}
	// The old address no longer logs in; the new one does.
	want(t, post(env, "com.atproto.server.createSession", "", map[string]string{"identifier": old, "password": a.Password}), 401, "AuthenticationRequired")
	want(t, post(env, "com.atproto.server.createSession", "", map[string]string{"identifier": "new2@example.com", "password": a.Password}), 200, "")
	_ = b
}

func TestPasswordReset(t *testing.T) {
	env, srv := mailEnv(t)
	a := env.CreateAccount()
	addr := "user1@example.com"
	// An unknown address answers the same and mails nothing.
	want(t, post(env, "com.atproto.server.requestPasswordReset", "", map[string]string{"email": "nobody@example.com"}), 200, "")
	want(t, post(env, "com.atproto.server.requestPasswordReset", "", map[string]string{"email": "USER1@example.com"}), 200, "")
	c := code(t, srv, addr, "Password Reset")
	for _, m := range srv.Messages() {
		if m.To == "nobody@example.com" {
			t.Fatal("mailed an unknown address")
		}
	}
	reset := func(token, pw string) *apitest.Response {
		return post(env, "com.atproto.server.resetPassword", "", map[string]string{"token": token, "password": pw})
	}
	want(t, reset("AAAAA-BBBBB", "a new password"), 400, "InvalidToken")
	want(t, reset(c, "a new password"), 200, "")
	want(t, reset(c, "another password"), 400, "InvalidToken")
	// Every session ended; the old password is gone, the new one works.
	want(t, post(env, "com.atproto.server.refreshSession", a.Refresh, nil), 400, "InvalidToken")
	want(t, post(env, "com.atproto.server.createSession", "", map[string]string{"identifier": addr, "password": a.Password}), 401, "AuthenticationRequired")
	want(t, post(env, "com.atproto.server.createSession", "", map[string]string{"identifier": addr, "password": "a new password"}), 200, "")
}

func TestDeleteOwnAccount(t *testing.T) {
	env, srv := mailEnv(t)
	a := env.CreateAccount()
	addr := "user1@example.com"
	want(t, post(env, "com.atproto.server.requestAccountDelete", a.Token, nil), 200, "")
	c := code(t, srv, addr, "Account Deletion")
	del := func(pw, token string) *apitest.Response {
		return post(env, "com.atproto.server.deleteAccount", "", map[string]string{"did": a.DID.String(), "password": pw, "token": token})
	}
	want(t, del("wrong", c), 401, "AuthenticationRequired")
	want(t, del(a.Password, "AAAAA-AAAAA"), 400, "InvalidToken")
	if _, err := env.Accounts.Get(context.Background(), a.DID); err != nil {
		t.Fatal("deleted by a failed attempt")
	}
	want(t, del(a.Password, c), 200, "")
	if _, err := env.Accounts.Get(context.Background(), a.DID); err == nil {
		t.Fatal("account still there")
	}
	want(t, env.Do("GET", "/xrpc/com.atproto.sync.getLatestCommit", map[string][]string{"did": {a.DID.String()}}, "", nil), 400, "RepoNotFound")
	// The #account deleted event stays in the log, the earlier ones are gone.
	head, err := env.Log.RepoHead(context.Background(), a.DID)
	if err == nil {
		t.Fatalf("repo head survived: %+v", head)
	}
}

func TestPLCOperationAndAdminEmail(t *testing.T) {
	env, srv := mailEnv(t)
	a := env.CreateAccount()
	addr := "user1@example.com"
	want(t, post(env, "com.atproto.identity.requestPlcOperationSignature", a.Token, nil), 200, "")
	c := code(t, srv, addr, "PLC Update")
	if err := env.PDS.ValidateToken(context.Background(), a.DID, events.PurposePLCOperation, c); err != nil {
		t.Fatalf("PLC code: %v", err)
	}
	r := post(env, "com.atproto.admin.sendEmail", apitest.AdminAuth(apitest.AdminPassword), map[string]string{
		"recipientDid": a.DID.String(), "senderDid": "did:plc:moderator00000000000000", "subject": "About your posts", "content": "<p>Hello &amp; welcome</p>"})
	want(t, r, 200, "")
	m := srv.Wait(addr, "About your posts")
	if !strings.Contains(m.HTML, "<p>Hello &amp; welcome</p>") || !strings.Contains(m.Text, "Hello & welcome") {
		t.Fatalf("admin message: %q / %q", m.HTML, m.Text)
	}
	want(t, post(env, "com.atproto.admin.sendEmail", a.Token, map[string]string{"recipientDid": a.DID.String(), "senderDid": a.DID.String(), "content": "x"}), 401, "")
}

func TestEmailSignInCode(t *testing.T) {
	env, srv := mailEnv(t)
	a := env.CreateAccount()
	addr := "user1@example.com"
	login := func(body map[string]string) *apitest.Response {
		return post(env, "com.atproto.server.createSession", "", body)
	}
	// Turning it on needs a confirmed address and the update code.
	want(t, post(env, "com.atproto.server.updateEmail", a.Token, map[string]any{"email": addr, "emailAuthFactor": true}), 400, "TokenRequired")
	confirm(t, env, srv, a, addr)
	want(t, post(env, "com.atproto.server.requestEmailUpdate", a.Token, nil), 200, "")
	c := code(t, srv, addr, "Email Update")
	want(t, post(env, "com.atproto.server.updateEmail", a.Token, map[string]any{"email": addr, "emailAuthFactor": true, "token": c}), 200, "")
	if s := session(t, env, a.Token); !s.EmailAuthFactor {
		t.Fatal("emailAuthFactor not reported")
	}
	// An app password made before is not subject to it.
	r := post(env, "com.atproto.server.createAppPassword", a.Token, map[string]string{"name": "phone"})
	want(t, r, 200, "")
	var ap struct{ Password string }
	r.JSON(t, &ap)
	want(t, login(map[string]string{"identifier": addr, "password": ap.Password}), 200, "")
	// The password alone: 401 and a code by mail; a wrong code, then the code.
	want(t, login(map[string]string{"identifier": addr, "password": a.Password}), 401, "AuthFactorTokenRequired")
	signIn := code(t, srv, addr, "Sign-in Code")
	want(t, login(map[string]string{"identifier": addr, "password": a.Password, "authFactorToken": "AAAAA-AAAAA"}), 400, "InvalidToken")
	want(t, login(map[string]string{"identifier": addr, "password": "wrong", "authFactorToken": signIn}), 401, "AuthenticationRequired")
	want(t, login(map[string]string{"identifier": addr, "password": a.Password, "authFactorToken": signIn}), 200, "")
	want(t, login(map[string]string{"identifier": addr, "password": a.Password, "authFactorToken": signIn}), 400, "InvalidToken")
}

// The mail server down, slow or refusing: calls answer at once, the
// message arrives once the server takes it, exactly once.
func TestMailServerFaults(t *testing.T) {
	env, srv := mailEnv(t)
	a := env.CreateAccount()
	addr := "user1@example.com"
	srv.Down()
	start := time.Now()
	want(t, post(env, "com.atproto.server.requestEmailConfirmation", a.Token, nil), 200, "")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the call waited %s for a server that is down", d)
	}
	time.Sleep(200 * time.Millisecond)
	srv.Up()
	c := code(t, srv, addr, "Email Confirmation")
	srv.FailNext(2, 554)
	srv.Slow(300 * time.Millisecond)
	start = time.Now()
	want(t, post(env, "com.atproto.server.requestEmailConfirmation", a.Token, nil), 200, "")
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("the call waited %s for a slow server", d)
	}
	c2 := code(t, srv, addr, "Email Confirmation")
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Messages()); n != 2 {
		t.Fatalf("%d messages delivered, want 2 (no duplicate)", n)
	}
	want(t, post(env, "com.atproto.server.confirmEmail", a.Token, map[string]string{"email": addr, "token": c}), 400, "InvalidToken")
	want(t, post(env, "com.atproto.server.confirmEmail", a.Token, map[string]string{"email": addr, "token": c2}), 200, "")
	if st := env.PDS.MailStats(); st.Sent.Load() != 2 || st.Retried.Load() < 3 {
		t.Fatalf("stats: sent %d retried %d", st.Sent.Load(), st.Retried.Load())
	}
	mfs, err := env.API.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "pdslog_mail_sent_total" && mf.GetMetric()[0].GetCounter().GetValue() == 2 {
			found = true
		}
	}
	if !found {
		t.Fatal("pdslog_mail_sent_total is not 2 in the metrics")
	}
}

func TestMailRateLimits(t *testing.T) {
	env, srv := mailEnv(t)
	a := env.CreateAccount()
	for i := range 6 {
		r := post(env, "com.atproto.server.requestEmailConfirmation", a.Token, nil)
		if i < 5 {
			want(t, r, 200, "")
			if r.Header.Get("RateLimit-Remaining") == "" {
				t.Fatalf("request %d: no RateLimit headers", i)
			}
			continue
		}
		want(t, r, 429, "RateLimitExceeded")
	}
	// The per-address limit: resets for one address stop mailing it, and
	// answer the same as for an unknown address.
	env2, srv2 := mailEnv(t)
	env2.CreateAccount()
	for range 12 {
		want(t, post(env2, "com.atproto.server.requestPasswordReset", "", map[string]string{"email": "user1@example.com"}), 200, "")
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(srv2.Messages()); n != 10 {
		t.Fatalf("%d resets mailed to one address, want the limit of 10", n)
	}
	_ = srv
}

// Without SMTP and outside dev mode, the mailing methods say which
// setting is missing; in dev mode the message goes to the log instead.
func TestNoMailConfigured(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	r := post(env, "com.atproto.server.requestEmailConfirmation", a.Token, nil)
	want(t, r, 501, "")
	if !strings.Contains(string(r.Body), "PDS_EMAIL_SMTP_URL") {
		t.Fatalf("no setting named: %s", r.Body)
	}
	var logged eventlogtest.SyncBuffer
	dev := apitest.NewPDS(t, func(o *pds.Options) {
		o.DevMode = true
		o.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	})
	b := dev.CreateAccount()
	want(t, post(dev, "com.atproto.server.requestEmailConfirmation", b.Token, nil), 200, "")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logged.String(), "to=user1@example.com") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if out := logged.String(); !strings.Contains(out, "to=user1@example.com") || !codeRe.MatchString(out) || !strings.Contains(out, "PDS_EMAIL_SMTP_URL") {
		t.Fatalf("dev mode log: %s", out)
	}
}
