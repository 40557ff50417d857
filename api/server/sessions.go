package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blocks"
	"github.com/pdslog/pdslog/projections/records"
)

// Sessions issues, verifies, rotates and revokes login sessions. Every
// session change is an event in the log; the accounts projection holds the
// state.
type Sessions struct {
	Tokens   *auth.Tokens
	Accounts *accounts.Projection
	Log      *eventlog.Log
	Runner   *projections.Runner
	Throttle *ratelimit.LoginThrottle
	Keys     *commit.SigningKeys // repo signing keys (getServiceAuth, #sync on activation)
	// Blocks and Records, if set, give checkAccountStatus its counts; Blocks
	// also gives activation's #sync its commit block.
	Blocks  *blocks.Projection
	Records *records.Projection
	Now     func() time.Time // nil means time.Now

	locks sync.Map // did -> *sync.Mutex: one rotation at a time per account
}

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sessions) lock(did syntax.DID) func() {
	m, _ := s.locks.LoadOrStore(did, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// append writes events and waits until the projections show them.
func (s *Sessions) append(ctx context.Context, evs ...*eventlog.Event) error {
	seq, err := s.Log.Append(ctx, evs...)
	if err != nil {
		return err
	}
	return s.Runner.CatchUp(ctx, seq)
}

// tokenError renders a token verification failure as the reference does.
func tokenError(err error) error {
	name := auth.XRPCErrorName(err)
	if name == "" {
		name = "InvalidToken"
	}
	msg := "Token could not be verified"
	if name == "ExpiredToken" {
		msg = "Token has expired"
	}
	return &xrpc.Error{Status: http.StatusBadRequest, Name: name, Message: msg, Err: err}
}

// Authenticate verifies a request's access token for the XRPC method it
// calls and returns the caller (api.Options.Authenticate). Session
// management methods that take a refresh token verify it themselves.
func (s *Sessions) Authenticate(c echo.Context) (*xrpc.Caller, error) {
	nsid, _ := strings.CutPrefix(c.Request().URL.Path, "/xrpc/")
	if nsid == "com.atproto.server.refreshSession" || nsid == "com.atproto.server.deleteSession" ||
		strings.HasPrefix(nsid, "com.atproto.admin.") || nsid == "com.atproto.server.createInviteCode" ||
		nsid == "com.atproto.server.createInviteCodes" {
		return nil, nil // these verify their own credentials
	}
	tok, ok, err := auth.BearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
	if err != nil || !ok {
		return nil, xrpc.AuthRequired("malformed authorization header")
	}
	claims, err := s.Tokens.VerifyAccessFor(tok, nsid, s.now())
	if err != nil {
		return nil, tokenError(err)
	}
	if _, err := s.Accounts.Get(c.Request().Context(), claims.DID); err != nil {
		return nil, xrpc.AuthRequired("account not found")
	}
	return &xrpc.Caller{DID: claims.DID, Scope: string(claims.Scope)}, nil
}

type sessionOutput struct {
	AccessJwt      string `json:"accessJwt,omitempty"`
	RefreshJwt     string `json:"refreshJwt,omitempty"`
	Handle         string `json:"handle"`
	DID            string `json:"did"`
	Email          string `json:"email,omitempty"`
	EmailConfirmed bool   `json:"emailConfirmed"`
	Active         bool   `json:"active"`
	Status         string `json:"status,omitempty"`
}

func outputFor(a *accounts.Account, sess *auth.Session) sessionOutput {
	out := sessionOutput{Handle: a.Handle.String(), DID: a.DID.String(), Email: a.Email, EmailConfirmed: a.EmailConfirmed,
		Active: a.Active, Status: a.Status}
	if sess != nil {
		out.AccessJwt, out.RefreshJwt = sess.AccessJwt, sess.RefreshJwt
	}
	return out
}

// findAccount resolves a login identifier: a DID, an email or a handle.
func (s *Sessions) findAccount(ctx context.Context, identifier string) (*accounts.Account, error) {
	switch {
	case strings.HasPrefix(identifier, "did:"):
		did, err := syntax.ParseDID(identifier)
		if err != nil {
			return nil, accounts.ErrNotFound
		}
		return s.Accounts.Get(ctx, did)
	case strings.Contains(identifier, "@"):
		return s.Accounts.ByEmail(ctx, identifier)
	default:
		h, err := syntax.ParseHandle(identifier)
		if err != nil {
			return nil, accounts.ErrNotFound
		}
		return s.Accounts.ByHandle(ctx, h.Normalize())
	}
}

// Open creates a session of a with the account password (appPassword "")
// or the named app password, and returns its tokens.
func (s *Sessions) Open(ctx context.Context, a *accounts.Account, appPassword string, privileged bool) (*auth.Session, error) {
	now := s.now()
	p := auth.SessionParams{DID: a.DID, SessionID: auth.NewSessionID(),
		Scope: auth.SessionScope(appPassword != "", privileged, a.Status == "takendown"), IssuedAt: now}
	sess, err := s.Tokens.Issue(p)
	if err != nil {
		return nil, err
	}
	ev, err := events.New(a.DID, &events.SessionCreated{ID: p.SessionID, AppPassword: appPassword,
		Privileged: privileged, CreatedAt: sess.IssuedAt.UTC().Format(time.RFC3339Nano), ExpiresAt: sess.RefreshExpiresAt.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return nil, err
	}
	if err := s.append(ctx, ev); err != nil {
		return nil, err
	}
	return &sess, nil
}

type createSessionInput struct {
	Identifier string `json:"identifier"`
	Password   string `json:"password"`
}

var errBadLogin = &xrpc.Error{Status: http.StatusUnauthorized, Name: "AuthenticationRequired", Message: "Invalid identifier or password"}

// CreateSession serves com.atproto.server.createSession: identifier (handle,
// email or DID) and the account password or an app password. Attempts are
// throttled per identifier and IP (the reference's 30 / 5 min and 300 / day,
// plus a 15 minute lock after 5 failures in a row) and every answer takes
// at least ratelimit.LoginMinDuration, so timing does not reveal accounts.
func (s *Sessions) CreateSession(c echo.Context) error {
	start := time.Now()
	defer func() {
		if d := ratelimit.LoginMinDuration - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}()
	var in createSessionInput
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if in.Identifier == "" || in.Password == "" {
		return xrpc.InvalidRequest("identifier and password are required")
	}
	ctx := c.Request().Context()
	ip := c.RealIP()
	dec := s.Throttle.Allow(in.Identifier, ip, s.now())
	if !dec.OK {
		dec.SetHeaders(c.Response().Header())
		return &xrpc.Error{Status: http.StatusTooManyRequests, Name: "RateLimitExceeded", Message: "Rate Limit Exceeded"}
	}
	a, err := s.findAccount(ctx, in.Identifier)
	if err != nil && !errors.Is(err, accounts.ErrNotFound) {
		s.Throttle.Release(in.Identifier, ip, s.now())
		return err
	}
	appPassword, privileged := "", false
	ok := false
	if a != nil {
		if ok, _ = auth.VerifyPassword(in.Password, a.PasswordHash); !ok && auth.IsAppPasswordFormat(in.Password) {
			aps, err := s.Accounts.AppPasswords(ctx, a.DID)
			if err != nil {
				s.Throttle.Release(in.Identifier, ip, s.now())
				return err
			}
			for _, ap := range aps {
				if match, _ := auth.VerifyAppPassword(a.DID, in.Password, ap.Hash); match {
					ok, appPassword, privileged = true, ap.Name, ap.Privileged
					break
				}
			}
		}
	}
	if !ok {
		s.Throttle.Fail(in.Identifier, ip, s.now())
		return errBadLogin
	}
	s.Throttle.Succeed(in.Identifier, ip, s.now())
	if a.Status == "deleted" {
		return errBadLogin
	}
	sess, err := s.Open(ctx, a, appPassword, privileged)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, outputFor(a, sess))
}

// GetSession serves com.atproto.server.getSession.
func (s *Sessions) GetSession(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	a, err := s.Accounts.Get(c.Request().Context(), caller.DID)
	if err != nil {
		return xrpc.AuthRequired("account not found")
	}
	return c.JSON(http.StatusOK, outputFor(a, nil))
}

func (s *Sessions) refreshClaims(c echo.Context, allowExpired bool) (auth.Claims, error) {
	tok, ok, err := auth.BearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
	if err != nil {
		return auth.Claims{}, xrpc.AuthRequired("a refresh token is required")
	}
	if !ok {
		return auth.Claims{}, xrpc.AuthMissing()
	}
	var claims auth.Claims
	if allowExpired {
		claims, err = s.Tokens.VerifyRefreshAllowExpired(tok, s.now())
	} else {
		claims, err = s.Tokens.VerifyRefresh(tok, s.now())
	}
	if err != nil {
		return auth.Claims{}, tokenError(err)
	}
	return claims, nil
}

var errRevoked = &xrpc.Error{Status: http.StatusBadRequest, Name: "InvalidToken", Message: "Token has been revoked"}

// RefreshSession serves com.atproto.server.refreshSession. The refresh
// token is single-use: it is rotated to a successor pair. Presented again
// within auth.RefreshReuseWindow it returns that same successor pair (an
// idempotent retry for racing tabs or a lost response); presented later it
// is refused and the whole session chain is revoked, since reuse signals a
// stolen token.
func (s *Sessions) RefreshSession(c echo.Context) error {
	claims, err := s.refreshClaims(c, false)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	unlock := s.lock(claims.DID)
	defer unlock()
	a, err := s.Accounts.Get(ctx, claims.DID)
	if err != nil {
		return errRevoked
	}
	cur, err := s.Accounts.Session(ctx, claims.DID, claims.SessionID)
	if errors.Is(err, accounts.ErrNotFound) {
		return errRevoked
	}
	if err != nil {
		return err
	}
	now := s.now()
	scope := auth.SessionScope(cur.AppPassword != "", cur.Privileged, a.Status == "takendown")
	if cur.RotatedTo != "" {
		at, perr := time.Parse(time.RFC3339Nano, cur.RotatedAt)
		next, nerr := s.Accounts.Session(ctx, claims.DID, cur.RotatedTo)
		if perr == nil && nerr == nil && now.Sub(at) <= auth.RefreshReuseWindow {
			sess, err := s.Tokens.Issue(auth.SessionParams{DID: a.DID, SessionID: next.ID, Scope: scope, IssuedAt: at})
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, outputFor(a, &sess))
		}
		ev, err := events.New(a.DID, &events.SessionRevoked{ID: claims.SessionID, Reason: "refresh token reused"})
		if err != nil {
			return err
		}
		if err := s.append(ctx, ev); err != nil {
			return err
		}
		return errRevoked
	}
	p := auth.SessionParams{DID: a.DID, SessionID: auth.NewSessionID(), Scope: scope, IssuedAt: now}
	sess, err := s.Tokens.Issue(p)
	if err != nil {
		return err
	}
	ev, err := events.New(a.DID, &events.SessionRotated{Old: claims.SessionID, New: p.SessionID,
		At: sess.IssuedAt.UTC().Format(time.RFC3339Nano), ExpiresAt: sess.RefreshExpiresAt.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	if err := s.append(ctx, ev); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, outputFor(a, &sess))
}

// DeleteSession serves com.atproto.server.deleteSession: revokes the
// session of the refresh token (expired ones too).
func (s *Sessions) DeleteSession(c echo.Context) error {
	claims, err := s.refreshClaims(c, true)
	if err != nil {
		return err
	}
	ev, err := events.New(claims.DID, &events.SessionRevoked{ID: claims.SessionID, Reason: "logout"})
	if err != nil {
		return err
	}
	if err := s.append(c.Request().Context(), ev); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return c.NoContent(http.StatusOK)
}
