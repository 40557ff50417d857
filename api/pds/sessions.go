package pds

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/accounts"
)

// ErrBadLogin is returned by CheckPassword for an unknown identifier, a
// wrong password or a deleted account, alike.
var ErrBadLogin = errors.New("pds: invalid identifier or password")

var badLogin = &Error{Kind: ErrBadLogin, Msg: "Invalid identifier or password"}

// Login is a verified password: the account and, when an app password was
// used, its name and privilege.
type Login struct {
	Account     *accounts.Account
	AppPassword string // "" for the account password
	Privileged  bool
}

// FindAccount resolves a login identifier: a DID, an email or a handle.
func (p *PDS) FindAccount(ctx context.Context, identifier string) (*accounts.Account, error) {
	switch {
	case strings.HasPrefix(identifier, "did:"):
		did, err := syntax.ParseDID(identifier)
		if err != nil {
			return nil, accounts.ErrNotFound
		}
		return p.Accounts.Get(ctx, did)
	case strings.Contains(identifier, "@"):
		return p.Accounts.ByEmail(ctx, identifier)
	default:
		h, err := syntax.ParseHandle(identifier)
		if err != nil {
			return nil, accounts.ErrNotFound
		}
		return p.Accounts.ByHandle(ctx, h.Normalize())
	}
}

// CheckPassword verifies identifier's account password or one of its app
// passwords. It returns ErrBadLogin when they do not match (or the account
// does not exist or is deleted), other errors when the check could not be
// made.
func (p *PDS) CheckPassword(ctx context.Context, identifier, password string) (*Login, error) {
	a, err := p.FindAccount(ctx, identifier)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, badLogin
	}
	if err != nil {
		return nil, err
	}
	if ok, _ := auth.VerifyPassword(password, a.PasswordHash); ok {
		return p.liveLogin(&Login{Account: a})
	}
	if !auth.IsAppPasswordFormat(password) {
		return nil, badLogin
	}
	aps, err := p.Accounts.AppPasswords(ctx, a.DID)
	if err != nil {
		return nil, err
	}
	for _, ap := range aps {
		if match, _ := auth.VerifyAppPassword(a.DID, password, ap.Hash); match {
			return p.liveLogin(&Login{Account: a, AppPassword: ap.Name, Privileged: ap.Privileged})
		}
	}
	return nil, badLogin
}

func (p *PDS) liveLogin(l *Login) (*Login, error) {
	if l.Account.Status == StatusDeleted {
		return nil, badLogin
	}
	return l, nil
}

// Login opens a session of a with the account password (appPassword "")
// or the named app password, and returns its tokens.
func (p *PDS) Login(ctx context.Context, a *accounts.Account, appPassword string, privileged bool) (*auth.Session, error) {
	now := p.Now()
	sp := auth.SessionParams{DID: a.DID, SessionID: auth.NewSessionID(),
		Scope: auth.SessionScope(appPassword != "", privileged, a.Status == StatusTakendown), IssuedAt: now}
	sess, err := p.Tokens.Issue(sp)
	if err != nil {
		return nil, err
	}
	ev, err := events.New(a.DID, &events.SessionCreated{ID: sp.SessionID, AppPassword: appPassword, Privileged: privileged,
		CreatedAt: sess.IssuedAt.UTC().Format(time.RFC3339Nano), ExpiresAt: sess.RefreshExpiresAt.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return nil, err
	}
	if _, err := p.commit(ctx, ev); err != nil {
		return nil, err
	}
	return &sess, nil
}

// Refresh rotates the session of a verified refresh token to a successor
// pair. The refresh token is single-use: presented again within
// auth.RefreshReuseWindow it returns that same successor pair (an
// idempotent retry for racing tabs or a lost response); presented later it
// is refused with ErrSessionRevoked and the whole session chain is revoked,
// since reuse signals a stolen token.
func (p *PDS) Refresh(ctx context.Context, claims auth.Claims) (*accounts.Account, *auth.Session, error) {
	unlock := p.Lock(claims.DID)
	defer unlock()
	revoked := &Error{Kind: ErrSessionRevoked, Msg: "Token has been revoked"}
	a, err := p.Accounts.Get(ctx, claims.DID)
	if err != nil {
		return nil, nil, revoked
	}
	cur, err := p.Accounts.Session(ctx, claims.DID, claims.SessionID)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, nil, revoked
	}
	if err != nil {
		return nil, nil, err
	}
	now := p.Now()
	scope := auth.SessionScope(cur.AppPassword != "", cur.Privileged, a.Status == StatusTakendown)
	if cur.RotatedTo != "" {
		at, perr := time.Parse(time.RFC3339Nano, cur.RotatedAt)
		next, nerr := p.Accounts.Session(ctx, claims.DID, cur.RotatedTo)
		if perr == nil && nerr == nil && now.Sub(at) <= auth.RefreshReuseWindow {
			sess, err := p.Tokens.Issue(auth.SessionParams{DID: a.DID, SessionID: next.ID, Scope: scope, IssuedAt: at})
			if err != nil {
				return nil, nil, err
			}
			return a, &sess, nil
		}
		ev, err := events.New(a.DID, &events.SessionRevoked{ID: claims.SessionID, Reason: "refresh token reused"})
		if err != nil {
			return nil, nil, err
		}
		if _, err := p.commit(ctx, ev); err != nil {
			return nil, nil, err
		}
		return nil, nil, revoked
	}
	sp := auth.SessionParams{DID: a.DID, SessionID: auth.NewSessionID(), Scope: scope, IssuedAt: now}
	sess, err := p.Tokens.Issue(sp)
	if err != nil {
		return nil, nil, err
	}
	ev, err := events.New(a.DID, &events.SessionRotated{Old: claims.SessionID, New: sp.SessionID,
		At: sess.IssuedAt.UTC().Format(time.RFC3339Nano), ExpiresAt: sess.RefreshExpiresAt.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return nil, nil, err
	}
	if _, err := p.commit(ctx, ev); err != nil {
		return nil, nil, err
	}
	return a, &sess, nil
}

// RevokeSession ends did's session id (and every session rotated from it);
// id "" ends all of its sessions.
func (p *PDS) RevokeSession(ctx context.Context, did syntax.DID, id, reason string) error {
	ev, err := events.New(did, &events.SessionRevoked{ID: id, Reason: reason})
	if err != nil {
		return err
	}
	_, err = p.commit(ctx, ev)
	return err
}

// NewAppPassword is a created app password: the password is shown once.
type NewAppPassword struct {
	Name       string
	Password   string
	CreatedAt  string
	Privileged bool
}

// CreateAppPassword creates an app password named name for did.
func (p *PDS) CreateAppPassword(ctx context.Context, did syntax.DID, name string, privileged bool) (*NewAppPassword, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return nil, &Error{Kind: ErrInvalidInput, Msg: "name must be 1 to 100 characters"}
	}
	unlock := p.Lock(did)
	defer unlock()
	existing, err := p.Accounts.AppPasswords(ctx, did)
	if err != nil {
		return nil, err
	}
	for _, ap := range existing {
		if ap.Name == name {
			return nil, errorf(ErrInvalidInput, "An app password with that name already exists: %s", name)
		}
	}
	pw := auth.NewAppPassword()
	hash, err := auth.HashAppPassword(did, pw)
	if err != nil {
		return nil, err
	}
	now := p.Now().UTC().Format(time.RFC3339Nano)
	ev, err := events.New(did, &events.AppPasswordCreated{Name: name, Hash: hash, Privileged: privileged, CreatedAt: now})
	if err != nil {
		return nil, err
	}
	if _, err := p.commit(ctx, ev); err != nil {
		return nil, err
	}
	return &NewAppPassword{Name: name, Password: pw, CreatedAt: now, Privileged: privileged}, nil
}

// RevokeAppPassword removes did's app password name; every session opened
// with it ends.
func (p *PDS) RevokeAppPassword(ctx context.Context, did syntax.DID, name string) error {
	ev, err := events.New(did, &events.AppPasswordRevoked{Name: name})
	if err != nil {
		return err
	}
	_, err = p.commit(ctx, ev)
	return err
}
