// Package mailtest runs a real SMTP server (emersion/go-smtp) on loopback
// for tests: it speaks STARTTLS with a certificate the client is told to
// trust, takes AUTH PLAIN, keeps every message it accepts (parsed into its
// parts), and can be made to fail — refuse connections, answer slowly, or
// refuse DATA with a 5xx or 4xx for the next N messages.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// User and Password are the credentials the server accepts.
const (
	User     = "pdslog"
	Password = "smtp-test-password"
)

// Message is an accepted message.
type Message struct {
	From, To string // envelope
	Header   mail.Header
	Subject  string // decoded
	Text     string // the text/plain part, decoded
	HTML     string // the text/html part, decoded
	Raw      []byte
	TLS      bool // received over TLS
}

// Server is a running SMTP server.
type Server struct {
	Addr string
	// TLS is the client configuration that trusts the server's certificate.
	TLS *tls.Config

	t   testing.TB
	srv *smtp.Server
	ln  net.Listener

	mu       sync.Mutex
	msgs     []Message
	seen     map[int]bool // returned by Wait or Inbox
	arrived  chan struct{}
	failNext int // DATA answers with failCode this many more times
	failCode int
	delay    time.Duration
	attempts int // DATA commands seen
}

// Start starts a server on loopback that t stops; it offers STARTTLS.
func Start(t testing.TB) *Server { return start(t, true) }

// StartPlain starts a server that offers no STARTTLS and takes AUTH over
// the plain connection (for a client that cannot be told to trust the
// test certificate, such as a `serve` configured by its settings alone).
func StartPlain(t testing.TB) *Server { return start(t, false) }

func start(t testing.TB, withTLS bool) *Server {
	t.Helper()
	cert, pool := selfSigned(t)
	s := &Server{t: t, arrived: make(chan struct{}, 1000), seen: map[int]bool{}, TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s, c: c}, nil }))
	s.srv.Domain = "mailtest.local"
	if withTLS {
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	} else {
		s.srv.AllowInsecureAuth = true
	}
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.MaxMessageBytes = 1 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.Addr = ln, ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// URL is the server's smtp:// URL with credentials.
func (s *Server) URL() string { return fmt.Sprintf("smtp://%s:%s@%s", User, Password, s.Addr) }

// Down closes the listener: connections are refused until Up.
func (s *Server) Down() { _ = s.ln.Close() }

// Up listens again on the same address.
func (s *Server) Up() {
	s.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.ln = ln
	go func() { _ = s.srv.Serve(ln) }()
}

// FailNext makes the next n DATA commands fail with code (e.g. 554 or 451).
func (s *Server) FailNext(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failCode = n, code
}

// Slow delays every answer to DATA by d.
func (s *Server) Slow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Attempts is how many DATA commands the server has seen (accepted or not).
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns the first accepted message to to whose subject contains
// subject that was not returned by Wait before, waiting up to 10 s.
func (s *Server) Wait(to, subject string) Message {
	s.t.Helper()
	m, ok := s.next(to, subject, 10*time.Second)
	if !ok {
		s.t.Fatalf("mailtest: no message to %s with subject %q (have %d messages)", to, subject, len(s.Messages()))
	}
	return m
}

func (s *Server) next(to, subject string, wait time.Duration) (Message, bool) {
	deadline := time.After(wait)
	for {
		s.mu.Lock()
		for i, m := range s.msgs {
			if m.To == to && strings.Contains(m.Subject, subject) && !s.seen[i] {
				s.seen[i] = true
				s.mu.Unlock()
				return m, true
			}
		}
		s.mu.Unlock()
		select {
		case <-s.arrived:
		case <-deadline:
			return Message{}, false
		}
	}
}

// Inbox serves the accepted messages over HTTP, for a client under test
// in another process: GET /?to=ADDR&subject=TEXT waits (10 s) for the next
// message to ADDR whose subject contains TEXT and answers it as JSON
// {"subject","text","html"}; 404 if none comes.
func (s *Server) Inbox() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to, subject := r.URL.Query().Get("to"), r.URL.Query().Get("subject")
		m, ok := s.next(to, subject, 10*time.Second)
		if !ok {
			http.Error(w, "no such message", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"subject": m.Subject, "text": m.Text, "html": m.HTML})
	})
}

type session struct {
	s        *Server
	c        *smtp.Conn
	from, to string
	authed   bool
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != User || pass != Password {
			return errors.New("bad credentials")
		}
		x.authed = true
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if !x.authed {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "reject@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	x.to = to
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := x.s
	s.mu.Lock()
	s.attempts++
	delay, fail, code := s.delay, s.failNext > 0, s.failCode
	if fail {
		s.failNext--
	}
	s.mu.Unlock()
	time.Sleep(delay)
	if fail {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 3, 0}, Message: "mailtest: refused on purpose"}
	}
	_, isTLS := x.c.TLSConnectionState()
	m, err := parse(raw)
	if err != nil {
		s.t.Errorf("mailtest: unparseable message: %v\n%s", err, raw)
		return err
	}
	m.From, m.To, m.TLS = x.from, x.to, isTLS
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (x *session) Reset()        {}
func (x *session) Logout() error { return nil }

// parse reads a message and its text and HTML parts.
func parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	m := Message{Header: msg.Header, Raw: raw}
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return m, err
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return m, err
	}
	if !strings.HasPrefix(mt, "multipart/") {
		b, err := decodeBody(msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		m.Text = b
		return m, err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return m, err
		}
		b, err := decodeBody(p.Header.Get("Content-Transfer-Encoding"), p)
		if err != nil {
			return m, err
		}
		switch ct := p.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, "text/plain"):
			m.Text = b
		case strings.HasPrefix(ct, "text/html"):
			m.HTML = b
		}
	}
}

func decodeBody(cte string, r io.Reader) (string, error) {
	if strings.EqualFold(cte, "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	return string(b), err
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}
