package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// ErrBadAddress is returned for an address that does not parse, or a
// header value with a line break.
var ErrBadAddress = errors.New("mail: bad address")

// Message is one email.
type Message struct {
	From    string // an address, optionally with a display name
	To      string // one address
	Subject string
	Text    string // the text/plain part
	HTML    string // the text/html part; "" sends text only
	// Kind names the message for logs and metrics ("confirm_email", …).
	Kind string
}

// ParseAddress returns the bare address of s (RFC 5322), refusing line
// breaks and anything net/mail does not accept.
func ParseAddress(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%w: line break in %q", ErrBadAddress, s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadAddress, s, err)
	}
	return a.Address, nil
}

// Bytes renders m as an RFC 5322 message with MIME parts.
func (m *Message) Bytes(now time.Time) ([]byte, error) {
	from, err := mail.ParseAddress(m.From)
	if err != nil || strings.ContainsAny(m.From, "\r\n") {
		return nil, fmt.Errorf("%w: from %q", ErrBadAddress, m.From)
	}
	to, err := ParseAddress(m.To)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, fmt.Errorf("%w: line break in the subject", ErrBadAddress)
	}
	var b bytes.Buffer
	h := textproto.MIMEHeader{}
	h.Set("From", from.String())
	h.Set("To", (&mail.Address{Address: to}).String())
	h.Set("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h.Set("Date", now.UTC().Format(time.RFC1123Z))
	h.Set("Message-ID", "<"+messageID()+"@"+domainOf(from.Address)+">")
	h.Set("MIME-Version", "1.0")
	if m.HTML == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		writeHeader(&b, h)
		return b.Bytes(), writeQP(&b, m.Text)
	}
	mw := multipart.NewWriter(&b)
	h.Set("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	// The header goes first: render it into a separate buffer and join.
	var head bytes.Buffer
	writeHeader(&head, h)
	for _, part := range []struct{ ct, body string }{{"text/plain; charset=utf-8", m.Text}, {"text/html; charset=utf-8", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.ct}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		if err := writeQP(pw, part.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return append(head.Bytes(), b.Bytes()...), nil
}

func writeHeader(b *bytes.Buffer, h textproto.MIMEHeader) {
	for _, k := range []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"} {
		if v := h.Get(k); v != "" {
			fmt.Fprintf(b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
}

func writeQP(w interface{ Write([]byte) (int, error) }, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(strings.ReplaceAll(s, "\n", "\r\n"))); err != nil {
		return err
	}
	return qp.Close()
}

func messageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func domainOf(addr string) string {
	if _, d, ok := strings.Cut(addr, "@"); ok && d != "" {
		return d
	}
	return "pdslog.invalid"
}
