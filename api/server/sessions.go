package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/netguard"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/accounts"
)

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

type sessionOutput struct {
	AccessJwt       string `json:"accessJwt,omitempty"`
	RefreshJwt      string `json:"refreshJwt,omitempty"`
	Handle          string `json:"handle"`
	DID             string `json:"did"`
	Email           string `json:"email,omitempty"`
	EmailConfirmed  bool   `json:"emailConfirmed"`
	EmailAuthFactor bool   `json:"emailAuthFactor"`
	Active          bool   `json:"active"`
	Status          string `json:"status,omitempty"`
}

func outputFor(a *accounts.Account, sess *auth.Session) sessionOutput {
	out := sessionOutput{Handle: a.Handle.String(), DID: a.DID.String(), Email: a.Email, EmailConfirmed: a.EmailConfirmed,
		EmailAuthFactor: a.EmailAuthFactor, Active: a.Active, Status: a.Status}
	if sess != nil {
		out.AccessJwt, out.RefreshJwt = sess.AccessJwt, sess.RefreshJwt
	}
	return out
}

type createSessionInput struct {
	Identifier      string `json:"identifier"`
	Password        string `json:"password"`
	AuthFactorToken string `json:"authFactorToken"`
	// AllowTakendown: the client can handle a taken-down account's
	// restricted session (the takendown scope); without it a taken-down
	// account's login is refused with AccountTakedown.
	AllowTakendown bool `json:"allowTakendown"`
}

// CreateSession serves com.atproto.server.createSession: identifier (handle,
// email or DID) and the account password or an app password. Identifiers
// longer than their kind can be are refused (400) before anything else,
// passwords over the reference's 512 characters too (401). Attempts are
// throttled per identifier and IP (the reference's 30 / 5 min and 300 / day,
// plus a 15 minute lock after 5 failures in a row) and every answer takes
// at least ratelimit.LoginMinDuration, so timing does not reveal accounts.
// An account with the email sign-in code on needs the code mailed to it
// too: without authFactorToken the answer is 401 AuthFactorTokenRequired
// and a code is mailed.
// A taken-down account's right password is answered 401 AccountTakedown
// unless the client sends allowTakendown, which opens a session of the
// restricted takendown scope (the reference's createSession).
func (h *Handlers) CreateSession(c echo.Context) error {
	start := time.Now()
	var in createSessionInput
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if in.Identifier == "" || in.Password == "" {
		return xrpc.InvalidRequest("identifier and password are required")
	}
	// Refused before the throttle sees them: an identifier no account can
	// have, and (the reference's check) a password no account can have.
	if err := pds.CheckLoginIdentifier(in.Identifier); err != nil {
		return err
	}
	if auth.PasswordLength(in.Password) > auth.OldPasswordMaxLength {
		return &xrpc.Error{Status: http.StatusUnauthorized, Name: "AuthenticationRequired", Message: "Password too long. Consider resetting your password."}
	}
	// From here on every answer takes at least LoginMinDuration (the
	// refusals above say nothing about any account).
	defer func() {
		if d := ratelimit.LoginMinDuration - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}()
	ctx := c.Request().Context()
	ip := netguard.Key(c.RealIP())
	dec := h.Throttle.Allow(in.Identifier, ip, h.PDS.Now())
	if !dec.OK {
		return xrpc.TooManyRequests(c, dec)
	}
	xrpc.RateLimit(c, dec)
	login, err := h.PDS.CheckPassword(ctx, in.Identifier, in.Password)
	if errors.Is(err, pds.ErrBadLogin) {
		h.Throttle.Fail(in.Identifier, ip, h.PDS.Now())
		return err
	}
	if err != nil {
		h.Throttle.Release(in.Identifier, ip, h.PDS.Now())
		return err
	}
	// The reference's answer to a taken-down account's right password,
	// before any sign-in code is mailed to it.
	if pds.TakenDown(login.Account) && !in.AllowTakendown {
		h.Throttle.Succeed(in.Identifier, ip, h.PDS.Now())
		return &xrpc.Error{Status: http.StatusUnauthorized, Name: "AccountTakedown", Message: "Account has been taken down"}
	}
	// The email sign-in code, for the account password (app passwords are
	// not subject to it, as the reference's entryway).
	if login.AppPassword == "" && login.Account.EmailAuthFactor {
		if err := h.PDS.CheckSignInCode(ctx, login.Account, in.AuthFactorToken); err != nil {
			if errors.Is(err, pds.ErrInvalidToken) || errors.Is(err, pds.ErrExpiredToken) {
				h.Throttle.Fail(in.Identifier, ip, h.PDS.Now())
			} else {
				h.Throttle.Release(in.Identifier, ip, h.PDS.Now())
			}
			return err
		}
	}
	h.Throttle.Succeed(in.Identifier, ip, h.PDS.Now())
	sess, err := h.PDS.Login(ctx, login.Account, login.AppPassword, login.Privileged)
	if err != nil {
		return err
	}
	a := login.Account
	return c.JSON(http.StatusOK, outputFor(a, sess))
}

// GetSession serves com.atproto.server.getSession.
func (h *Handlers) GetSession(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	a, err := h.PDS.Accounts.Get(c.Request().Context(), caller.DID)
	if err != nil {
		return xrpc.AuthRequired("account not found")
	}
	out := outputFor(a, nil)
	if caller.OAuth != nil && !caller.OAuth.AllowsAccount("email", "read") {
		// an OAuth client sees the email only with account:email (or
		// transition:email)
		out.Email, out.EmailConfirmed, out.EmailAuthFactor = "", false, false
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handlers) refreshClaims(c echo.Context, allowExpired bool) (auth.Claims, error) {
	tok, ok, err := auth.BearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
	if err != nil {
		return auth.Claims{}, xrpc.AuthRequired("a refresh token is required")
	}
	if !ok {
		return auth.Claims{}, xrpc.AuthMissing()
	}
	var claims auth.Claims
	if allowExpired {
		claims, err = h.PDS.Tokens.VerifyRefreshAllowExpired(tok, h.PDS.Now())
	} else {
		claims, err = h.PDS.Tokens.VerifyRefresh(tok, h.PDS.Now())
	}
	if err != nil {
		return auth.Claims{}, tokenError(err)
	}
	return claims, nil
}

// RefreshSession serves com.atproto.server.refreshSession: the refresh
// token is rotated (pds.Refresh says how reuse is answered).
func (h *Handlers) RefreshSession(c echo.Context) error {
	claims, err := h.refreshClaims(c, false)
	if err != nil {
		return err
	}
	a, sess, err := h.PDS.Refresh(c.Request().Context(), claims)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, outputFor(a, sess))
}

// DeleteSession serves com.atproto.server.deleteSession: revokes the
// session of the refresh token (expired ones too).
func (h *Handlers) DeleteSession(c echo.Context) error {
	claims, err := h.refreshClaims(c, true)
	if err != nil {
		return err
	}
	if err := h.PDS.RevokeSession(c.Request().Context(), claims.DID, claims.SessionID, "logout"); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return c.NoContent(http.StatusOK)
}
