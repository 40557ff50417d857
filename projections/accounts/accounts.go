// Package accounts is the projection of hosted accounts: identity (handle,
// email), credentials (password hash, app passwords), the log seq of the
// current repo signing key (the key itself stays sealed in the log), login
// sessions (refresh token ids and their rotations), invite codes,
// preferences (preferences.go) and hosting status. It is built from the
// account, session, app password, invite, preference and signing key
// events of the catalogue (eventlog/events) and from #identity / #account
// events; a deleted account leaves nothing behind.
package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
)

// Name is the projection's name.
const Name = "accounts"

// ErrNotFound is returned when no account, session, app password or invite
// matches.
var ErrNotFound = errors.New("accounts: not found")

// Account is one hosted account.
type Account struct {
	DID            syntax.DID    `json:"did"`
	Handle         syntax.Handle `json:"handle,omitempty"`
	Email          string        `json:"email,omitempty"`
	EmailConfirmed bool          `json:"emailConfirmed,omitempty"`
	// EmailAuthFactor: sign-in with the account password also needs a
	// code mailed to the address.
	EmailAuthFactor bool         `json:"emailAuthFactor,omitempty"`
	PasswordHash    string       `json:"passwordHash,omitempty"`
	SigningKeySeq   eventlog.Seq `json:"signingKeySeq,omitempty"` // seq of the events.TypeSigningKey event in force
	CreatedAt       string       `json:"createdAt,omitempty"`
	InviteCode      string       `json:"inviteCode,omitempty"`
	Active          bool         `json:"active"`
	Status          string       `json:"status,omitempty"` // "" when active
	// Admin state (moderation.go): when the address was confirmed and
	// the account deactivated (event times), the takedown's ref, and
	// whether the account's own invite codes are off.
	EmailConfirmedAt string `json:"emailConfirmedAt,omitempty"`
	DeactivatedAt    string `json:"deactivatedAt,omitempty"`
	TakedownRef      string `json:"takedownRef,omitempty"`
	InvitesDisabled  bool   `json:"invitesDisabled,omitempty"`
}

// SessionState is a refresh token's state.
type SessionState struct {
	events.SessionCreated
	RotatedTo string `json:"rotatedTo,omitempty"`
	RotatedAt string `json:"rotatedAt,omitempty"`
}

// InviteState is an invite code and its uses.
type InviteState struct {
	events.InviteCreated
	Disabled bool         `json:"disabled,omitempty"`
	UsedBy   []syntax.DID `json:"usedBy,omitempty"`
	// UsedAt[i] is when UsedBy[i] signed up ("" for uses recorded before
	// the field existed).
	UsedAt []string `json:"usedAt,omitempty"`
}

// Projection is the accounts projection on a projections.Store.
//
// Keys: 'a' did -> Account; 'h' handle -> did; 'e' email -> did;
// 's' did 0x00 id -> SessionState; 'p' did 0x00 name -> AppPassword;
// 'i' code -> InviteState; 'f' did -> preferences.
type Projection struct {
	*projections.KV
	// cache keeps decoded accounts for Get, which every authenticated
	// request and every write makes; a batch that may change any account
	// (a private, identity or account event) starts a new generation.
	cache *projections.GenCache[syntax.DID, Account]
}

// New returns the accounts projection stored in s.
func New(s *projections.Store) *Projection {
	return &Projection{KV: projections.NewKV(s, Name, apply), cache: &projections.GenCache[syntax.DID, Account]{}}
}

var _ projections.Projection = (*Projection)(nil)

func accountKey(did syntax.DID) []byte              { return append([]byte{'a'}, did...) }
func handleKey(h syntax.Handle) []byte              { return append([]byte{'h'}, strings.ToLower(string(h))...) }
func emailKey(e string) []byte                      { return append([]byte{'e'}, strings.ToLower(e)...) }
func sessionPrefix(did syntax.DID) []byte           { return append(append([]byte{'s'}, did...), 0) }
func sessionKey(did syntax.DID, id string) []byte   { return append(sessionPrefix(did), id...) }
func appPassPrefix(did syntax.DID) []byte           { return append(append([]byte{'p'}, did...), 0) }
func appPassKey(did syntax.DID, name string) []byte { return append(appPassPrefix(did), name...) }
func inviteKey(code string) []byte                  { return append([]byte{'i'}, code...) }

func getJSON(w *projections.Writer, k []byte, v any) (bool, error) {
	b, ok, err := w.Get(k)
	if err != nil || !ok {
		return ok, err
	}
	return true, json.Unmarshal(b, v)
}

func setJSON(w *projections.Writer, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.Set(k, b)
}

func apply(w *projections.Writer, ev *eventlog.Event) error {
	switch ev.Kind {
	case eventlog.KindPrivate, eventlog.KindIdentity, eventlog.KindAccount:
	default:
		return nil
	}
	var a Account
	exists, err := getJSON(w, accountKey(ev.DID), &a)
	if err != nil {
		return err
	}
	if !exists {
		a = Account{DID: ev.DID, Active: true}
	}
	save := true
	switch ev.Kind {
	case eventlog.KindIdentity:
		if !exists {
			return nil // identity events of accounts we do not host
		}
		if h := ev.Identity.Handle; h != "" && h != a.Handle {
			if a.Handle != "" {
				if err := w.Delete(handleKey(a.Handle)); err != nil {
					return err
				}
			}
			a.Handle = h
			if err := w.Set(handleKey(h), []byte(ev.DID)); err != nil {
				return err
			}
		}
	case eventlog.KindAccount:
		if ev.Account.Status == "deleted" {
			if err := unschedule(w, ev.DID); err != nil {
				return err
			}
			if err := w.Delete(reservedKey(ev.DID)); err != nil {
				return err
			}
			return deleteAccount(w, &a, exists)
		}
		if !exists {
			return nil
		}
		a.Active, a.Status = ev.Account.Active, ev.Account.Status
		noteDeactivation(&a, ev)
		if a.Active {
			if err := unschedule(w, ev.DID); err != nil {
				return err
			}
		}
	case eventlog.KindPrivate:
		if ev.Private.Type == events.TypeKeyReserved {
			return applyKeyReserved(w, ev) // for an account that may not exist yet
		}
		save, err = applyPrivate(w, ev, &a)
		if err != nil {
			return fmt.Errorf("%s: %w", ev.Private.Type, err)
		}
	}
	if !save {
		return nil
	}
	return setJSON(w, accountKey(ev.DID), &a)
}

func deleteAccount(w *projections.Writer, a *Account, exists bool) error {
	if !exists {
		return nil
	}
	for _, k := range [][]byte{accountKey(a.DID), handleKey(a.Handle), emailKey(a.Email)} {
		if err := w.Delete(k); err != nil {
			return err
		}
	}
	if err := w.DeletePrefix(sessionPrefix(a.DID)); err != nil {
		return err
	}
	if err := w.Delete(prefsKey(a.DID)); err != nil {
		return err
	}
	if err := retireTokens(w, a.DID); err != nil {
		return err
	}
	return w.DeletePrefix(appPassPrefix(a.DID))
}

// privateAppliers apply the private events this projection reads, by
// type; each reports whether the account row must be saved. Types not
// listed (blob events, and types of newer pdslogs) change nothing here.
var privateAppliers = map[string]privateApplier{
	events.TypeSigningKey: func(_ *projections.Writer, ev *eventlog.Event, a *Account) (bool, error) {
		a.SigningKeySeq = ev.Seq // the key itself stays sealed in the log
		return true, nil
	},
	events.TypeAccountCreated:     typed(applyCreated),
	events.TypePassword:           typed(applyPassword),
	events.TypeEmail:              typed(applyEmail),
	events.TypeSessionCreated:     typed(applySessionCreated),
	events.TypeSessionRotated:     typed(applySessionRotated),
	events.TypeSessionRevoked:     typed(applySessionRevoked),
	events.TypeAppPasswordCreated: typed(applyAppPasswordCreated),
	events.TypeAppPasswordRevoked: typed(applyAppPasswordRevoked),
	events.TypeInviteCreated:      typed(applyInviteCreated),
	events.TypeInviteDisabled:     typed(applyInviteDisabled),
	events.TypePreferencesPut:     typed(applyPreferences),
	events.TypeEmailTokenIssued:   typed(applyTokenIssued),
	events.TypeEmailTokenUsed:     typed(applyTokenUsed),
	events.TypeEmailAuthFactor:    typed(applyEmailAuthFactor),
	events.TypeDeletionScheduled:  typed(applyDeletionScheduled),
	events.TypeAccountTakedown:    typed(applyAccountTakedown),
	events.TypeAccountInvites:     typed(applyAccountInvites),
}

type privateApplier func(w *projections.Writer, ev *eventlog.Event, a *Account) (save bool, err error)

// typed adapts an applier of one payload type: it decodes the event's data
// into that type first.
func typed[P any, PP interface {
	*P
	events.Payload
}](fn func(w *projections.Writer, ev *eventlog.Event, a *Account, p PP) (bool, error)) privateApplier {
	return func(w *projections.Writer, ev *eventlog.Event, a *Account) (bool, error) {
		p := PP(new(P))
		if err := events.Unmarshal(ev.Private.Data, p); err != nil {
			return false, err
		}
		return fn(w, ev, a, p)
	}
}

// applyPrivate applies one private event; it reports whether the account
// row must be saved.
func applyPrivate(w *projections.Writer, ev *eventlog.Event, a *Account) (bool, error) {
	fn, ok := privateAppliers[ev.Private.Type]
	if !ok {
		return false, nil
	}
	return fn(w, ev, a)
}

func applyCreated(w *projections.Writer, ev *eventlog.Event, a *Account, c *events.AccountCreated) (bool, error) {
	a.Handle, a.Email, a.PasswordHash, a.CreatedAt, a.InviteCode = c.Handle, c.Email, c.PasswordHash, c.CreatedAt, c.InviteCode
	if err := w.Set(handleKey(c.Handle), []byte(ev.DID)); err != nil {
		return false, err
	}
	if c.Email != "" {
		if err := w.Set(emailKey(c.Email), []byte(ev.DID)); err != nil {
			return false, err
		}
	}
	if c.InviteCode == "" {
		return true, nil
	}
	var inv InviteState
	if ok, err := getJSON(w, inviteKey(c.InviteCode), &inv); err != nil || !ok {
		return true, err
	}
	for len(inv.UsedAt) < len(inv.UsedBy) {
		inv.UsedAt = append(inv.UsedAt, "")
	}
	inv.UsedBy, inv.UsedAt = append(inv.UsedBy, ev.DID), append(inv.UsedAt, c.CreatedAt)
	return true, setJSON(w, inviteKey(c.InviteCode), &inv)
}

func applyPassword(_ *projections.Writer, _ *eventlog.Event, a *Account, pw *events.Password) (bool, error) {
	a.PasswordHash = pw.PasswordHash
	return true, nil
}

func applyEmail(w *projections.Writer, ev *eventlog.Event, a *Account, e *events.Email) (bool, error) {
	if a.Email != "" && !strings.EqualFold(a.Email, e.Email) {
		if err := w.Delete(emailKey(a.Email)); err != nil {
			return false, err
		}
	}
	noteEmailConfirmation(a, ev, e)
	a.Email, a.EmailConfirmed = e.Email, e.Confirmed
	return true, w.Set(emailKey(e.Email), []byte(ev.DID))
}

func applySessionCreated(w *projections.Writer, ev *eventlog.Event, _ *Account, s *events.SessionCreated) (bool, error) {
	if err := pruneSessions(w, ev.DID, ev.Time); err != nil {
		return false, err
	}
	return false, setJSON(w, sessionKey(ev.DID, s.ID), &SessionState{SessionCreated: *s})
}

func applySessionRotated(w *projections.Writer, ev *eventlog.Event, _ *Account, r *events.SessionRotated) (bool, error) {
	var old SessionState
	ok, err := getJSON(w, sessionKey(ev.DID, r.Old), &old)
	if err != nil || !ok {
		return false, err // rotating a revoked session changes nothing
	}
	next := SessionState{SessionCreated: events.SessionCreated{ID: r.New, AppPassword: old.AppPassword, Privileged: old.Privileged,
		CreatedAt: r.At, ExpiresAt: r.ExpiresAt}}
	old.RotatedTo, old.RotatedAt = r.New, r.At
	if err := setJSON(w, sessionKey(ev.DID, r.Old), &old); err != nil {
		return false, err
	}
	return false, setJSON(w, sessionKey(ev.DID, r.New), &next)
}

func applySessionRevoked(w *projections.Writer, ev *eventlog.Event, _ *Account, r *events.SessionRevoked) (bool, error) {
	if r.ID == "" {
		return false, w.DeletePrefix(sessionPrefix(ev.DID))
	}
	return false, revokeChain(w, ev.DID, r.ID)
}

func applyAppPasswordCreated(w *projections.Writer, ev *eventlog.Event, _ *Account, ap *events.AppPasswordCreated) (bool, error) {
	return false, setJSON(w, appPassKey(ev.DID, ap.Name), ap)
}

func applyAppPasswordRevoked(w *projections.Writer, ev *eventlog.Event, _ *Account, r *events.AppPasswordRevoked) (bool, error) {
	if err := w.Delete(appPassKey(ev.DID, r.Name)); err != nil {
		return false, err
	}
	// Its sessions end with it.
	var doomed [][]byte
	err := w.Scan(context.Background(), sessionPrefix(ev.DID), nil, false, func(k, v []byte) error {
		var s SessionState
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		if s.AppPassword == r.Name {
			doomed = append(doomed, append([]byte{}, k...))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, k := range doomed {
		if err := w.Delete(k); err != nil {
			return false, err
		}
	}
	return false, nil
}

func applyInviteCreated(w *projections.Writer, _ *eventlog.Event, _ *Account, inv *events.InviteCreated) (bool, error) {
	return false, setJSON(w, inviteKey(inv.Code), &InviteState{InviteCreated: *inv})
}

func applyInviteDisabled(w *projections.Writer, _ *eventlog.Event, _ *Account, d *events.InviteDisabled) (bool, error) {
	for _, code := range d.Codes {
		var inv InviteState
		ok, err := getJSON(w, inviteKey(code), &inv)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		inv.Disabled = true
		if err := setJSON(w, inviteKey(code), &inv); err != nil {
			return false, err
		}
	}
	return false, nil
}

// revokeChain deletes a session and every session rotated from it.
func revokeChain(w *projections.Writer, did syntax.DID, id string) error {
	for seen := 0; id != "" && seen < 10_000; seen++ {
		var s SessionState
		ok, err := getJSON(w, sessionKey(did, id), &s)
		if err != nil || !ok {
			return err
		}
		if err := w.Delete(sessionKey(did, id)); err != nil {
			return err
		}
		id = s.RotatedTo
	}
	return nil
}

// pruneSessions drops did's sessions that expired before now (an event's
// time, so replay prunes exactly what live apply did).
func pruneSessions(w *projections.Writer, did syntax.DID, now syntax.Datetime) error {
	t, err := syntax.ParseDatetimeTime(string(now))
	if err != nil {
		return nil
	}
	var doomed [][]byte
	err = w.Scan(context.Background(), sessionPrefix(did), nil, false, func(k, v []byte) error {
		var s SessionState
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		if exp, err := time.Parse(time.RFC3339Nano, s.ExpiresAt); err == nil && exp.Before(t) {
			doomed = append(doomed, append([]byte{}, k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := w.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func readJSON(sp *projections.Space, k []byte, v any) error {
	b, ok, err := sp.Get(k)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	return json.Unmarshal(b, v)
}

// Get returns the account of did, or ErrNotFound.
func (p *Projection) Get(ctx context.Context, did syntax.DID) (*Account, error) {
	if a, ok := p.cache.Get(did); ok {
		return &a, nil // a copy: callers may modify it
	}
	gen := p.cache.Gen()
	var a Account
	if err := readJSON(p.Space, accountKey(did), &a); err != nil {
		return nil, err
	}
	p.cache.Put(did, gen, a)
	return &a, nil
}

func (p *Projection) lookup(ctx context.Context, k []byte) (*Account, error) {
	did, ok, err := p.Space.Get(k)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	return p.Get(ctx, syntax.DID(did))
}

// ByHandle returns the account with handle h (case-insensitive), or ErrNotFound.
func (p *Projection) ByHandle(ctx context.Context, h syntax.Handle) (*Account, error) {
	return p.lookup(ctx, handleKey(h))
}

// ByEmail returns the account with email e (case-insensitive), or ErrNotFound.
func (p *Projection) ByEmail(ctx context.Context, e string) (*Account, error) {
	return p.lookup(ctx, emailKey(e))
}

// Session returns a session of did by refresh token id, or ErrNotFound.
func (p *Projection) Session(ctx context.Context, did syntax.DID, id string) (*SessionState, error) {
	var s SessionState
	if err := readJSON(p.Space, sessionKey(did, id), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// AppPasswords lists did's app passwords in name order.
func (p *Projection) AppPasswords(ctx context.Context, did syntax.DID) ([]events.AppPasswordCreated, error) {
	var out []events.AppPasswordCreated
	err := p.Space.Scan(ctx, appPassPrefix(did), nil, false, func(_, v []byte) error {
		var ap events.AppPasswordCreated
		if err := json.Unmarshal(v, &ap); err != nil {
			return err
		}
		out = append(out, ap)
		return nil
	})
	return out, err
}

// Invite returns an invite code's state, or ErrNotFound.
func (p *Projection) Invite(ctx context.Context, code string) (*InviteState, error) {
	var inv InviteState
	if err := readJSON(p.Space, inviteKey(code), &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// Count returns how many accounts exist (up to limit, to keep it cheap).
func (p *Projection) Count(ctx context.Context, limit int) (int, error) {
	n := 0
	err := p.Space.Scan(ctx, []byte{'a'}, nil, false, func(_, _ []byte) error {
		n++
		if n >= limit {
			return io.EOF
		}
		return nil
	})
	return n, err
}

// Invites lists every invite code, in code order.
func (p *Projection) Invites(ctx context.Context) ([]InviteState, error) {
	var out []InviteState
	err := p.Space.Scan(ctx, []byte{'i'}, nil, false, func(_, v []byte) error {
		var inv InviteState
		if err := json.Unmarshal(v, &inv); err != nil {
			return err
		}
		out = append(out, inv)
		return nil
	})
	return out, err
}
