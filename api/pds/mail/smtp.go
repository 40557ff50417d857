package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Sender delivers one message. Implementations are safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// DefaultTimeout bounds one SMTP delivery (connect to QUIT).
const DefaultTimeout = 30 * time.Second

// SMTP delivers through an SMTP server.
type SMTP struct {
	addr     string // host:port
	host     string
	implicit bool // smtps://: TLS from the first byte
	user     string
	pass     string
	// TLS, if set, is the TLS configuration (tests trust their own CA);
	// nil verifies the server's certificate against the system roots.
	TLS *tls.Config
	// Timeout bounds one delivery; 0 means DefaultTimeout.
	Timeout time.Duration
	// RequireTLS refuses to send over a connection without TLS (a server
	// that offers no STARTTLS). Off by default, as the reference's
	// nodemailer, which uses STARTTLS only when offered.
	RequireTLS bool
}

// NewSMTP parses an SMTP URL as the reference reads PDS_EMAIL_SMTP_URL:
// smtp://[user:pass@]host[:port] (port 25 by default; STARTTLS when the
// server offers it) or smtps://… (TLS, port 465 by default).
func NewSMTP(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("mail: bad SMTP URL: %v", err)
	}
	s := &SMTP{host: u.Hostname()}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "25"
		}
	case "smtps":
		s.implicit = true
		if port == "" {
			port = "465"
		}
	default:
		return nil, fmt.Errorf("mail: SMTP URL scheme %q: want smtp or smtps", u.Scheme)
	}
	if s.host == "" {
		return nil, errors.New("mail: SMTP URL has no host")
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	s.addr = net.JoinHostPort(s.host, port)
	return s, nil
}

// Addr is the server's host:port.
func (s *SMTP) Addr() string { return s.addr }

func (s *SMTP) tlsConfig() *tls.Config {
	if s.TLS != nil {
		c := s.TLS.Clone()
		if c.ServerName == "" {
			c.ServerName = s.host
		}
		return c
	}
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
}

// Send delivers m: connect, (STARTTLS,) AUTH when a user is set, MAIL,
// RCPT, DATA, QUIT. The message counts as sent once DATA is accepted.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := m.Bytes(time.Now())
	if err != nil {
		return err
	}
	from, err := ParseAddress(m.From)
	if err != nil {
		return err
	}
	to, err := ParseAddress(m.To)
	if err != nil {
		return err
	}
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	if err := c.Hello(helloName(from)); err != nil {
		return fmt.Errorf("mail: EHLO: %w", err)
	}
	if s.user != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.user, s.pass)); err != nil {
			return fmt.Errorf("mail: AUTH: %w", err)
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return fmt.Errorf("mail: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return &rcptError{err}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	_ = c.Quit() // accepted: a failed QUIT does not unsend it
	return nil
}

// rcptError is the server's refusal of the recipient.
type rcptError struct{ err error }

func (e *rcptError) Error() string { return "mail: RCPT TO: " + e.err.Error() }
func (e *rcptError) Unwrap() error { return e.err }

// connect dials the server and, for smtp://, upgrades with STARTTLS when
// the server offers it (a server that does not gets a second, plain
// connection, unless RequireTLS).
func (s *SMTP) connect(ctx context.Context) (*smtp.Client, error) {
	dial := func() (net.Conn, error) {
		d := &net.Dialer{}
		conn, err := d.DialContext(ctx, "tcp", s.addr)
		if err != nil {
			return nil, fmt.Errorf("mail: connect %s: %w", s.addr, err)
		}
		// Whatever deadlines the client sets, the context ends the
		// delivery.
		context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
		return conn, nil
	}
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	if s.implicit {
		return smtp.NewClient(tls.Client(conn, s.tlsConfig())), nil
	}
	c, err := smtp.NewClientStartTLS(conn, s.tlsConfig())
	if err == nil {
		return c, nil
	}
	if s.RequireTLS || !strings.Contains(err.Error(), "doesn't support STARTTLS") {
		return nil, fmt.Errorf("mail: STARTTLS: %w", err)
	}
	if conn, err = dial(); err != nil {
		return nil, err
	}
	return smtp.NewClient(conn), nil
}

// Permanent reports whether a delivery error is one retrying cannot fix: a
// bad address, or the server's permanent (5xx) refusal of the recipient.
// Everything else (connection refused, timeouts, 4xx, a 5xx to the
// greeting, MAIL or DATA) is retried.
func Permanent(err error) bool {
	if errors.Is(err, ErrBadAddress) {
		return true
	}
	var re *rcptError
	var se *smtp.SMTPError
	return errors.As(err, &re) && errors.As(err, &se) && se.Code >= 500
}

func helloName(from string) string {
	if _, d, ok := strings.Cut(from, "@"); ok && d != "" {
		return d
	}
	return "localhost"
}

// Log writes each message to a function (development without SMTP: the
// operator reads codes from the server's log).
type Log struct {
	Write func(m *Message)
}

// Send writes m.
func (l Log) Send(_ context.Context, m *Message) error {
	if _, err := ParseAddress(m.To); err != nil {
		return err
	}
	l.Write(m)
	return nil
}
