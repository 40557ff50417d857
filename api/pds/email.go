package pds

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds/mail"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/accounts"
)

// TokenTTL is how long an emailed token is valid (the reference's 15
// minutes).
const TokenTTL = 15 * time.Minute

// Errors of the emailed-token flows.
var (
	ErrInvalidToken            = errors.New("pds: invalid token")
	ErrExpiredToken            = errors.New("pds: expired token")
	ErrTokenRequired           = errors.New("pds: token required")
	ErrInvalidEmail            = errors.New("pds: invalid email")
	ErrAuthFactorTokenRequired = errors.New("pds: email sign-in code required")
	ErrMailNotConfigured       = errors.New("pds: email is not configured")
	ErrMailRateLimited         = errors.New("pds: too many emails to this address")
)

// mailer is the write side's email: the outbox, the sender's address and
// the per-recipient limit.
type mailer struct {
	from       string
	outbox     *mail.Outbox
	moderation *mail.Outbox
	modFrom    string
	perAddress *ratelimit.Limiter
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	stats      MailStats
}

// MailStats counts mail the outbox handled.
type MailStats struct {
	Sent, Retried, Failed atomic.Int64
}

// startMail builds the outboxes and starts their workers (stopped by
// Close). With no sender and dev mode, messages go to the log.
func (p *PDS) startMail() {
	o := p.opts
	sender := o.Mail
	if sender == nil && o.DevMode {
		logger := o.Logger.With("component", "mail")
		sender = mail.Log{Write: func(m *mail.Message) {
			logger.Warn("no SMTP server configured (PDS_EMAIL_SMTP_URL): the message is written here instead",
				"to", m.To, "subject", m.Subject, "kind", m.Kind, "text", m.Text)
		}}
	}
	if sender == nil {
		return
	}
	m := &mailer{from: o.MailFrom, modFrom: o.ModerationMailFrom,
		perAddress: ratelimit.NewLimiter(ratelimit.DefaultMaxKeys, ratelimit.LimitMailPerAddressHour, ratelimit.LimitMailPerAddressDay)}
	if m.from == "" {
		m.from = "noreply@" + p.Service.Hostname
	}
	hooks := mail.Hooks{
		Sent:   func(string) { m.stats.Sent.Add(1) },
		Retry:  func(string, int, error) { m.stats.Retried.Add(1) },
		Failed: func(string, error) { m.stats.Failed.Add(1) },
	}
	logger := o.Logger.With("component", "mail")
	m.outbox = &mail.Outbox{Sender: sender, Backoff: o.MailBackoff, Logger: logger, Hooks: hooks}
	modSender := o.ModerationMail
	if modSender == nil {
		modSender = sender
	}
	if m.modFrom == "" {
		m.modFrom = m.from
	}
	m.moderation = &mail.Outbox{Sender: modSender, Backoff: o.MailBackoff, Logger: logger.With("outbox", "moderation"), Hooks: hooks}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Go(func() { m.outbox.Run(ctx) })
	m.wg.Go(func() { m.moderation.Run(ctx) })
	p.mail = m
}

func (m *mailer) stop() {
	if m != nil {
		m.cancel()
		m.wg.Wait()
	}
}

// MailStats returns the outbox's counters (nil when email is off).
func (p *PDS) MailStats() *MailStats {
	if p.mail == nil {
		return nil
	}
	return &p.mail.stats
}

// MailConfigured reports whether the PDS can send email.
func (p *PDS) MailConfigured() bool { return p.mail != nil }

func errNoMail() error {
	return &Error{Kind: ErrMailNotConfigured, Msg: "this server cannot send email: PDS_EMAIL_SMTP_URL is not set"}
}

// newToken returns a token in the reference's shape, XXXXX-XXXXX (base32,
// 50 bits).
func newToken() string {
	var b [7]byte
	_, _ = rand.Read(b[:])
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:10]
	return s[:5] + "-" + s[5:]
}

var tokenShape = regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}$`)

// normalizeToken accepts a token in any case, with or without its dash
// and surrounding spaces; "" if it cannot be one.
func normalizeToken(t string) string {
	t = strings.ToUpper(strings.TrimSpace(t))
	if len(t) == 10 && !strings.Contains(t, "-") {
		t = t[:5] + "-" + t[5:]
	}
	if !tokenShape.MatchString(t) {
		return ""
	}
	return t
}

func tokenHash(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// sendToken issues a token of purpose for a (replacing any earlier one),
// records its hash in the log bound to the address, and mails it there.
// The append happens first: a token that was mailed is always one the log
// knows. It does not wait for the mail server.
func (p *PDS) sendToken(ctx context.Context, a *accounts.Account, purpose, kind string) error {
	if p.mail == nil {
		return errNoMail()
	}
	if a.Email == "" {
		return &Error{Kind: ErrInvalidInput, Msg: "account does not have an email address"}
	}
	if !p.mail.perAddress.Charge(strings.ToLower(a.Email), 1, p.Now()).OK {
		return &Error{Kind: ErrMailRateLimited, Msg: "Too many emails to this address: try again later"}
	}
	tok := newToken()
	msg, err := mail.Render(kind, p.mail.from, a.Email, mail.Data{Service: p.Service.Hostname, Token: tok, Handle: a.Handle.String()})
	if err != nil {
		return err
	}
	ev, err := events.New(a.DID, &events.EmailTokenIssued{Purpose: purpose, Hash: tokenHash(tok), Email: a.Email,
		ExpiresAt: p.Now().Add(TokenTTL).UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	if _, err := p.commit(ctx, ev); err != nil {
		return err
	}
	if err := p.mail.outbox.Enqueue(msg); err != nil {
		return fmt.Errorf("pds: queue %s mail: %w", kind, err)
	}
	return nil
}

// checkToken validates did's token of purpose: present, matching, not
// expired, and bound to the account's current address.
func (p *PDS) checkToken(ctx context.Context, a *accounts.Account, purpose, token string) error {
	t := normalizeToken(token)
	invalid := &Error{Kind: ErrInvalidToken, Msg: "Token is invalid"}
	if t == "" {
		return invalid
	}
	cur, err := p.Accounts.EmailToken(ctx, a.DID, purpose)
	if errors.Is(err, accounts.ErrNotFound) {
		return invalid
	}
	if err != nil {
		return err
	}
	if cur.Hash != tokenHash(t) || !strings.EqualFold(cur.Email, a.Email) {
		return invalid
	}
	exp, err := time.Parse(time.RFC3339Nano, cur.ExpiresAt)
	if err != nil || !p.Now().Before(exp) {
		return &Error{Kind: ErrExpiredToken, Msg: "Token is expired"}
	}
	return nil
}

func used(did syntax.DID, purpose string) *eventlog.Event {
	return events.Must(did, &events.EmailTokenUsed{Purpose: purpose})
}

// ValidateToken checks did's emailed token of purpose without using it
// (the caller appends the token's use with the change it authorises).
func (p *PDS) ValidateToken(ctx context.Context, did syntax.DID, purpose, token string) error {
	a, err := p.account(ctx, did)
	if err != nil {
		return err
	}
	return p.checkToken(ctx, a, purpose, token)
}

// RequestEmailConfirmation mails did a code confirming its address.
func (p *PDS) RequestEmailConfirmation(ctx context.Context, did syntax.DID) error {
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.changeable(ctx, did)
	if err != nil {
		return err
	}
	return p.sendToken(ctx, a, events.PurposeConfirmEmail, mail.KindConfirmEmail)
}

// ConfirmEmail confirms did's address with the code mailed to it.
func (p *PDS) ConfirmEmail(ctx context.Context, did syntax.DID, email, token string) error {
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.account(ctx, did)
	if err != nil {
		return err
	}
	if !strings.EqualFold(strings.TrimSpace(email), a.Email) {
		return &Error{Kind: ErrInvalidEmail, Msg: "invalid email"}
	}
	if err := p.checkToken(ctx, a, events.PurposeConfirmEmail, token); err != nil {
		return err
	}
	_, err = p.commit(ctx, events.Must(did, &events.Email{Email: a.Email, Confirmed: true}), used(did, events.PurposeConfirmEmail))
	return err
}

// RequestEmailUpdate starts an address change: with a confirmed address a
// code goes to it, and the change will need it (tokenRequired).
func (p *PDS) RequestEmailUpdate(ctx context.Context, did syntax.DID) (tokenRequired bool, err error) {
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.changeable(ctx, did)
	if err != nil {
		return false, err
	}
	if a.Email == "" {
		return false, &Error{Kind: ErrInvalidInput, Msg: "account does not have an email address"}
	}
	if !a.EmailConfirmed {
		return false, nil
	}
	return true, p.sendToken(ctx, a, events.PurposeUpdateEmail, mail.KindUpdateEmail)
}

// EmailUpdate is an updateEmail call.
type EmailUpdate struct {
	Email string
	Token string
	// AuthFactor, if set, turns the email sign-in code on or off.
	AuthFactor *bool
}

// UpdateEmail changes did's address (unconfirmed until confirmed again)
// and/or turns the email sign-in code on or off. A confirmed address needs
// the code mailed to it; so does any change of the sign-in code, which can
// only be turned on for a confirmed address.
func (p *PDS) UpdateEmail(ctx context.Context, did syntax.DID, in EmailUpdate) error {
	addr, err := mail.ParseAddress(strings.TrimSpace(in.Email))
	if err != nil || addr != strings.TrimSpace(in.Email) {
		return &Error{Kind: ErrInvalidInput, Msg: "This email address is not supported, please use a different email."}
	}
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.changeable(ctx, did)
	if err != nil {
		return err
	}
	changed := !strings.EqualFold(addr, a.Email)
	factor := in.AuthFactor != nil && *in.AuthFactor != a.EmailAuthFactor
	if !changed && !factor {
		return nil
	}
	if a.EmailConfirmed || factor {
		if in.Token == "" {
			return &Error{Kind: ErrTokenRequired, Msg: "confirmation token required"}
		}
		if err := p.checkToken(ctx, a, events.PurposeUpdateEmail, in.Token); err != nil {
			return err
		}
	}
	if factor && *in.AuthFactor && (changed || !a.EmailConfirmed) {
		return &Error{Kind: ErrInvalidInput, Msg: "the email sign-in code needs a confirmed address: confirm it first"}
	}
	var evs []*eventlog.Event
	if changed {
		release, err := p.claimEmail(ctx, did, addr)
		if err != nil {
			return err
		}
		defer release()
		// Every token was bound to the old address: all go.
		evs = append(evs, events.Must(did, &events.Email{Email: addr}), used(did, ""))
	} else {
		evs = append(evs, used(did, events.PurposeUpdateEmail))
	}
	if factor {
		evs = append(evs, events.Must(did, &events.EmailAuthFactor{Enabled: *in.AuthFactor}))
	}
	_, err = p.commit(ctx, evs...)
	return err
}

// RequestPasswordReset mails a reset code to the account with this
// address. It answers the same whether or not one exists, and the
// per-address mail limit is charged either way, so nothing tells which
// addresses have accounts.
func (p *PDS) RequestPasswordReset(ctx context.Context, email string) error {
	if p.mail == nil {
		return errNoMail()
	}
	addr := strings.ToLower(strings.TrimSpace(email))
	if _, err := mail.ParseAddress(addr); err != nil {
		return &Error{Kind: ErrInvalidInput, Msg: "invalid email address"}
	}
	a, err := p.Accounts.ByEmail(ctx, addr)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && a.Status == StatusDeleted) {
		p.mail.perAddress.Charge(addr, 1, p.Now())
		return nil
	}
	if err != nil {
		return err
	}
	unlock := p.Lock(a.DID)
	defer unlock()
	err = p.sendToken(ctx, a, events.PurposeResetPassword, mail.KindResetPassword)
	if errors.Is(err, ErrMailRateLimited) {
		return nil // refused quietly: an unknown address would not say
	}
	return err
}

// ResetPassword sets a new password with a reset code, and ends every
// session and refresh token of the account.
func (p *PDS) ResetPassword(ctx context.Context, token, password string) error {
	t := normalizeToken(token)
	invalid := &Error{Kind: ErrInvalidToken, Msg: "Token is invalid"}
	if t == "" {
		return invalid
	}
	if err := auth.CheckNewPassword(password); err != nil {
		return &Error{Kind: ErrInvalidInput, Msg: strings.TrimPrefix(err.Error(), "auth: ")}
	}
	did, err := p.Accounts.EmailTokenOwner(ctx, events.PurposeResetPassword, tokenHash(t))
	if errors.Is(err, accounts.ErrNotFound) {
		return invalid
	}
	if err != nil {
		return err
	}
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.account(ctx, did)
	if err != nil {
		return err
	}
	if err := p.checkToken(ctx, a, events.PurposeResetPassword, t); err != nil {
		return err
	}
	hash, err := p.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	_, err = p.commit(ctx,
		events.Must(did, &events.Password{PasswordHash: hash}),
		events.Must(did, &events.SessionRevoked{Reason: "password reset"}),
		used(did, events.PurposeResetPassword))
	return err
}

// RequestAccountDelete mails did the code its deletion needs.
func (p *PDS) RequestAccountDelete(ctx context.Context, did syntax.DID) error {
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.changeable(ctx, did)
	if err != nil {
		return err
	}
	return p.sendToken(ctx, a, events.PurposeDeleteAccount, mail.KindDeleteAccount)
}

// DeleteOwnAccount deletes did's account for its owner: the password and
// the code mailed by RequestAccountDelete, then the same deletion as the
// admin's (DeleteAccount).
func (p *PDS) DeleteOwnAccount(ctx context.Context, did syntax.DID, password, token string) error {
	a, err := p.Accounts.Get(ctx, did)
	if errors.Is(err, accounts.ErrNotFound) {
		return &Error{Kind: ErrInvalidInput, Msg: "account not found"}
	}
	if err != nil {
		return err
	}
	ok, err := p.verifyPassword(ctx, password, a.PasswordHash)
	if err != nil {
		return err
	}
	if !ok {
		return &Error{Kind: ErrBadLogin, Msg: "Invalid did or password"}
	}
	if err := p.checkToken(ctx, a, events.PurposeDeleteAccount, token); err != nil {
		return err
	}
	return p.DeleteAccount(ctx, did)
}

// RequestPLCOperationSignature mails did the code signPlcOperation needs.
func (p *PDS) RequestPLCOperationSignature(ctx context.Context, did syntax.DID) error {
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.account(ctx, did)
	if err != nil {
		return err
	}
	return p.sendToken(ctx, a, events.PurposePLCOperation, mail.KindPLCOperation)
}

// SendAdminEmail sends the admin's message (HTML content) to did's address
// through the moderation mailer.
func (p *PDS) SendAdminEmail(ctx context.Context, did syntax.DID, subject, content string) error {
	if p.mail == nil {
		return errNoMail()
	}
	a, err := p.Accounts.Get(ctx, did)
	if errors.Is(err, accounts.ErrNotFound) {
		return &Error{Kind: ErrInvalidInput, Msg: "Recipient not found"}
	}
	if err != nil {
		return err
	}
	if a.Email == "" {
		return &Error{Kind: ErrInvalidInput, Msg: "account does not have an email address"}
	}
	if subject == "" {
		subject = "Message via your PDS"
	}
	if strings.ContainsAny(subject, "\r\n") {
		return &Error{Kind: ErrInvalidInput, Msg: "subject must be one line"}
	}
	msg := &mail.Message{From: p.mail.modFrom, To: a.Email, Subject: subject, HTML: content, Text: textOf(content), Kind: mail.KindAdmin}
	return p.mail.moderation.Enqueue(msg)
}

var tags = regexp.MustCompile(`(?s)<[^>]*>`)

// textOf is a plain-text rendering of an admin's HTML message.
func textOf(h string) string {
	return strings.TrimSpace(html.UnescapeString(tags.ReplaceAllString(h, "")))
}

// CheckSignInCode is the email sign-in step of a password login of an
// account with the email sign-in code on: with no code it mails one and
// answers ErrAuthFactorTokenRequired; with one it checks it and uses it.
func (p *PDS) CheckSignInCode(ctx context.Context, a *accounts.Account, code string) error {
	unlock := p.Lock(a.DID)
	defer unlock()
	if code == "" {
		if err := p.sendToken(ctx, a, events.PurposeSignIn, mail.KindSignInCode); err != nil {
			return err
		}
		return &Error{Kind: ErrAuthFactorTokenRequired, Msg: "A sign in code has been sent to your email address"}
	}
	if err := p.checkToken(ctx, a, events.PurposeSignIn, code); err != nil {
		return err
	}
	_, err := p.commit(ctx, used(a.DID, events.PurposeSignIn))
	return err
}

// claimEmail claims addr for did's account until release: refused when
// another account has it or is being given it.
func (p *PDS) claimEmail(ctx context.Context, did syntax.DID, addr string) (release func(), err error) {
	return p.claims.take(func(pending func(string) int) error {
		if pending(emailClaim(addr)) > 0 {
			return &Error{Kind: ErrInvalidInput, Msg: "This email address is already in use"}
		}
		if other, err := p.Accounts.ByEmail(ctx, addr); err == nil && other.DID != did {
			return &Error{Kind: ErrInvalidInput, Msg: "This email address is already in use"}
		} else if err != nil && !errors.Is(err, accounts.ErrNotFound) {
			return err
		}
		return nil
	}, emailClaim(addr))
}
