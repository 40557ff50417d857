package mail_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/pds/mail"
	"github.com/pdslog/pdslog/api/pds/mail/mailtest"
)

func sender(t *testing.T, srv *mailtest.Server) *mail.SMTP {
	t.Helper()
	s, err := mail.NewSMTP(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	s.TLS, s.RequireTLS, s.Timeout = srv.TLS, true, 3*time.Second
	return s
}

// Every template renders for a real server: STARTTLS, AUTH, multipart with
// the code in both parts and the service named.
func TestSendEveryTemplate(t *testing.T) {
	srv := mailtest.Start(t)
	s := sender(t, srv)
	for _, kind := range mail.Kinds() {
		m, err := mail.Render(kind, "PDS <noreply@pds.example>", "alice@example.com", mail.Data{Service: "pds.example", Token: "ABCDE-FGHIJ", Handle: "alice.pds.example"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		got := srv.Wait("alice@example.com", m.Subject)
		if !got.TLS {
			t.Errorf("%s: not sent over TLS", kind)
		}
		for part, body := range map[string]string{"text": got.Text, "html": got.HTML} {
			if !strings.Contains(body, "ABCDE-FGHIJ") || !strings.Contains(body, "pds.example") {
				t.Errorf("%s %s part lacks the code or the service:\n%s", kind, part, body)
			}
		}
		if got.Header.Get("From") == "" || got.From != "noreply@pds.example" {
			t.Errorf("%s: from %q / envelope %q", kind, got.Header.Get("From"), got.From)
		}
	}
}

// Nothing a user chose can add a header.
func TestHeaderInjection(t *testing.T) {
	for _, to := range []string{"a@example.com\r\nBcc: x@evil.example", "a@example.com\nBcc: x@evil.example", "not an address", ""} {
		if _, err := mail.ParseAddress(to); !errors.Is(err, mail.ErrBadAddress) {
			t.Errorf("%q accepted", to)
		}
		m := &mail.Message{From: "noreply@pds.example", To: to, Subject: "x", Text: "x"}
		if _, err := m.Bytes(time.Now()); !errors.Is(err, mail.ErrBadAddress) {
			t.Errorf("message to %q rendered", to)
		}
	}
	m := &mail.Message{From: "noreply@pds.example", To: "a@example.com", Subject: "hi\r\nBcc: x@evil.example", Text: "x"}
	if _, err := m.Bytes(time.Now()); err == nil {
		t.Error("subject with a line break rendered")
	}
	// A handle with markup is escaped in the HTML part.
	r, err := mail.Render(mail.KindResetPassword, "noreply@pds.example", "a@example.com", mail.Data{Service: "pds.example", Token: "T", Handle: "<script>x</script>"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") {
		t.Error("handle not escaped in HTML")
	}
}

// The outbox retries a server that is down, slow or refusing (5xx and 4xx
// on DATA) until it takes the message, and sends each message once.
func TestOutboxRetries(t *testing.T) {
	srv := mailtest.Start(t)
	var sent, failed, retries atomic.Int32
	o := &mail.Outbox{Sender: sender(t, srv), Backoff: 50 * time.Millisecond, Attempts: 20,
		Hooks: mail.Hooks{Sent: func(string) { sent.Add(1) }, Failed: func(string, error) { failed.Add(1) },
			Retry: func(string, int, error) { retries.Add(1) }}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go o.Run(ctx)
	msg := func(to string) *mail.Message {
		return &mail.Message{From: "noreply@pds.example", To: to, Subject: "hello " + to, Text: "x", Kind: "test"}
	}
	srv.FailNext(2, 554)
	if err := o.Enqueue(msg("five@example.com")); err != nil {
		t.Fatal(err)
	}
	srv.Wait("five@example.com", "hello")
	srv.FailNext(1, 451)
	if err := o.Enqueue(msg("four@example.com")); err != nil {
		t.Fatal(err)
	}
	srv.Wait("four@example.com", "hello")
	srv.Down()
	start := time.Now()
	if err := o.Enqueue(msg("down@example.com")); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("Enqueue waited for the server")
	}
	time.Sleep(300 * time.Millisecond)
	srv.Up()
	srv.Wait("down@example.com", "hello")
	if r := retries.Load(); r < 4 {
		t.Errorf("%d retries, want at least 4", r)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Messages()); n != 3 || sent.Load() != 3 || failed.Load() != 0 {
		t.Fatalf("server has %d messages, sent %d, failed %d; want 3, 3, 0", n, sent.Load(), failed.Load())
	}
}

// A recipient the server refuses (550) is not retried; a server that
// never comes back is given up after the retry budget; both are counted.
func TestOutboxGivesUp(t *testing.T) {
	srv := mailtest.Start(t)
	var failed atomic.Int32
	o := &mail.Outbox{Sender: sender(t, srv), Backoff: 10 * time.Millisecond, Attempts: 3,
		Hooks: mail.Hooks{Failed: func(string, error) { failed.Add(1) }}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go o.Run(ctx)
	if err := o.Enqueue(&mail.Message{From: "noreply@pds.example", To: "reject@example.com", Subject: "x", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, 554)
	if err := o.Enqueue(&mail.Message{From: "noreply@pds.example", To: "b@example.com", Subject: "x", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for failed.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if failed.Load() != 2 {
		t.Fatalf("failed %d, want 2", failed.Load())
	}
	if a := srv.Attempts(); a != 3 {
		t.Fatalf("%d DATA attempts, want 3 (the refused recipient never reaches DATA)", a)
	}
}

// smtps:// speaks TLS from the first byte; a wrong password is refused.
func TestSMTPURLs(t *testing.T) {
	for _, bad := range []string{"http://x", "smtp://", "smtps:///path", "::"} {
		if _, err := mail.NewSMTP(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	s, err := mail.NewSMTP("smtps://u:p@mail.example")
	if err != nil || s.Addr() != "mail.example:465" {
		t.Fatalf("smtps default port: %v %v", s, err)
	}
	srv := mailtest.Start(t)
	wrong, _ := mail.NewSMTP("smtp://pdslog:wrong@" + srv.Addr)
	wrong.TLS = srv.TLS
	if err := wrong.Send(context.Background(), &mail.Message{From: "a@pds.example", To: "b@example.com", Subject: "x", Text: "x"}); err == nil {
		t.Fatal("wrong password sent")
	}
}
