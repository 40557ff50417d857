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

// The longest login identifiers there can be: a handle (253 characters, the
// DNS limit), an email address (254, RFC 5321's path limit; createAccount
// refuses longer ones) and a DID (2048, atproto's limit).
const (
	MaxHandleLength = 253
	MaxEmailLength  = 254
	MaxDIDLength    = 2048
)

// CheckLoginIdentifier refuses a login identifier longer than its kind
// (as FindAccount tells them apart) can be: no account has it, and it is
// refused before anything (a rate limiter) keeps it.
func CheckLoginIdentifier(identifier string) error {
	limit, kind := MaxHandleLength, "handle"
	switch {
	case strings.HasPrefix(identifier, "did:"):
		limit, kind = MaxDIDLength, "DID"
	case strings.Contains(identifier, "@"):
		limit, kind = MaxEmailLength, "email"
	}
	if len(strings.TrimSpace(identifier)) > limit {
		return errorf(ErrInvalidInput, "identifier is too long for a %s (at most %d characters)", kind, limit)
	}
	return nil
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
// does not exist or is deleted), ErrPasswordBusy when the server-wide
// hashing gate had no turn for it, other errors when the check could not
// be made. It costs at most two scrypts whatever the account's number of
// app passwords: the account password's, then the attempt hashed once with
// the app passwords' DID-derived salt and compared with all of them.
func (p *PDS) CheckPassword(ctx context.Context, identifier, password string) (*Login, error) {
	a, err := p.FindAccount(ctx, identifier)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, badLogin
	}
	if err != nil {
		return nil, err
	}
	ok, err := p.verifyPassword(ctx, password, a.PasswordHash)
	if err != nil {
		return nil, err
	}
	if ok {
		return p.liveLogin(&Login{Account: a})
	}
	// A taken-down account logs in with its password only (the
	// reference's login: "takendown/suspended accounts cannot login with
	// app password").
	if !auth.IsAppPasswordFormat(password) || TakenDown(a) {
		return nil, badLogin
	}
	aps, err := p.Accounts.AppPasswords(ctx, a.DID)
	if err != nil {
		return nil, err
	}
	if len(aps) == 0 {
		return nil, badLogin
	}
	hashes := make([]string, len(aps))
	for i, ap := range aps {
		hashes[i] = ap.Hash
	}
	match := -1
	if err := p.hash(ctx, func() { match, err = auth.MatchAppPassword(a.DID, password, hashes) }); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if match < 0 {
		return nil, badLogin
	}
	ap := aps[match]
	return p.liveLogin(&Login{Account: a, AppPassword: ap.Name, Privileged: ap.Privileged})
}

func (p *PDS) liveLogin(l *Login) (*Login, error) {
	if l.Account.Status == StatusDeleted {
		return nil, badLogin
	}
	return l, nil
}

// Login opens a session of a with the account password (appPassword "")
// or the named app password, and returns its tokens. A taken-down
// account's session has the restricted takendown scope.
func (p *PDS) Login(ctx context.Context, a *accounts.Account, appPassword string, privileged bool) (*auth.Session, error) {
	now := p.Now()
	sp := auth.SessionParams{DID: a.DID, SessionID: auth.NewSessionID(),
		Scope: auth.SessionScope(appPassword != "", privileged, TakenDown(a)), IssuedAt: now}
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
// since reuse signals a stolen token. A taken-down account's tokens never
// refresh (ErrAccountTakendown).
func (p *PDS) Refresh(ctx context.Context, claims auth.Claims) (*accounts.Account, *auth.Session, error) {
	unlock := p.Lock(claims.DID)
	defer unlock()
	revoked := &Error{Kind: ErrSessionRevoked, Msg: "Token has been revoked"}
	a, err := p.Accounts.Get(ctx, claims.DID)
	if err != nil {
		return nil, nil, revoked
	}
	// The reference's refreshSession refuses a taken-down account
	// whatever the token (its sessions were revoked at the takedown, and a
	// takendown-scope session does not refresh either).
	if TakenDown(a) {
		return nil, nil, &Error{Kind: ErrAccountTakendown, Msg: "Account has been taken down"}
	}
	cur, err := p.Accounts.Session(ctx, claims.DID, claims.SessionID)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, nil, revoked
	}
	if err != nil {
		return nil, nil, err
	}
	now := p.Now()
	scope := auth.SessionScope(cur.AppPassword != "", cur.Privileged, TakenDown(a))
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

// MaxAppPasswords is how many app passwords an account may have. The
// reference sets no limit; this one bounds what an account stores and what
// each login compares.
const MaxAppPasswords = 100

// NewAppPassword is a created app password: the password is shown once.
type NewAppPassword struct {
	Name       string
	Password   string
	CreatedAt  string
	Privileged bool
}

// CreateAppPassword creates an app password named name for did, up to
// MaxAppPasswords; a taken-down account cannot.
func (p *PDS) CreateAppPassword(ctx context.Context, did syntax.DID, name string, privileged bool) (*NewAppPassword, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return nil, &Error{Kind: ErrInvalidInput, Msg: "name must be 1 to 100 characters"}
	}
	unlock := p.Lock(did)
	defer unlock()
	if _, err := p.changeable(ctx, did); err != nil {
		return nil, err
	}
	existing, err := p.Accounts.AppPasswords(ctx, did)
	if err != nil {
		return nil, err
	}
	for _, ap := range existing {
		if ap.Name == name {
			return nil, errorf(ErrInvalidInput, "An app password with that name already exists: %s", name)
		}
	}
	if len(existing) >= MaxAppPasswords {
		return nil, errorf(ErrInvalidInput, "Too many app passwords: an account may have at most %d; revoke one first", MaxAppPasswords)
	}
	pw := auth.NewAppPassword()
	var hash string
	if herr := p.hash(ctx, func() { hash, err = auth.HashAppPassword(did, pw) }); herr != nil {
		return nil, herr
	}
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
