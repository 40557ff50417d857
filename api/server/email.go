package server

import (
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/netguard"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/xrpc"
)

// RequestEmailConfirmation serves com.atproto.server.requestEmailConfirmation:
// a code confirming the caller's address is mailed to it.
func (h *Handlers) RequestEmailConfirmation(c echo.Context) error {
	caller, err := h.emailRequest(c)
	if err != nil {
		return err
	}
	if err := h.PDS.RequestEmailConfirmation(c.Request().Context(), caller); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// ConfirmEmail serves com.atproto.server.confirmEmail.
func (h *Handlers) ConfirmEmail(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in struct {
		Email string `json:"email"`
		Token string `json:"token"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if in.Email == "" || in.Token == "" {
		return xrpc.InvalidRequest("email and token are required")
	}
	if err := h.PDS.ConfirmEmail(c.Request().Context(), caller.DID, in.Email, in.Token); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// RequestEmailUpdate serves com.atproto.server.requestEmailUpdate: with a
// confirmed address, a code is mailed to it and the update will need it.
func (h *Handlers) RequestEmailUpdate(c echo.Context) error {
	caller, err := h.emailRequest(c)
	if err != nil {
		return err
	}
	required, err := h.PDS.RequestEmailUpdate(c.Request().Context(), caller)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"tokenRequired": required})
}

// UpdateEmail serves com.atproto.server.updateEmail (and turns the email
// sign-in code on or off with emailAuthFactor).
func (h *Handlers) UpdateEmail(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in struct {
		Email           string `json:"email"`
		EmailAuthFactor *bool  `json:"emailAuthFactor"`
		Token           string `json:"token"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if in.Email == "" {
		return xrpc.InvalidRequest("email is required")
	}
	if err := h.PDS.UpdateEmail(c.Request().Context(), caller.DID, pds.EmailUpdate{Email: in.Email, Token: in.Token, AuthFactor: in.EmailAuthFactor}); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// RequestPasswordReset serves com.atproto.server.requestPasswordReset (no
// auth): it answers 200 whether or not the address has an account.
func (h *Handlers) RequestPasswordReset(c echo.Context) error {
	var in struct {
		Email string `json:"email"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if in.Email == "" {
		return xrpc.InvalidRequest("email is required")
	}
	if err := xrpc.Charge(c, h.PasswordResets, netguard.Key(c.RealIP()), h.PDS.Now()); err != nil {
		return err
	}
	if err := h.PDS.RequestPasswordReset(c.Request().Context(), in.Email); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// ResetPassword serves com.atproto.server.resetPassword: the new password
// with the mailed code; every session of the account ends.
func (h *Handlers) ResetPassword(c echo.Context) error {
	var in struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if in.Token == "" || in.Password == "" {
		return xrpc.InvalidRequest("token and password are required")
	}
	if err := xrpc.Charge(c, h.TokenUses, netguard.Key(c.RealIP()), h.PDS.Now()); err != nil {
		return err
	}
	if err := h.PDS.ResetPassword(c.Request().Context(), in.Token, in.Password); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// RequestAccountDelete serves com.atproto.server.requestAccountDelete.
func (h *Handlers) RequestAccountDelete(c echo.Context) error {
	caller, err := h.emailRequest(c)
	if err != nil {
		return err
	}
	if err := h.PDS.RequestAccountDelete(c.Request().Context(), caller); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// DeleteAccount serves com.atproto.server.deleteAccount (no session: the
// DID, its password and the mailed code).
func (h *Handlers) DeleteAccount(c echo.Context) error {
	var in struct {
		DID      string `json:"did"`
		Password string `json:"password"`
		Token    string `json:"token"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	did, err := xrpc.ParseDID("did", in.DID)
	if err != nil {
		return err
	}
	if in.Password == "" || in.Token == "" {
		return xrpc.InvalidRequest("password and token are required")
	}
	if err := xrpc.Charge(c, h.TokenUses, netguard.Key(c.RealIP()), h.PDS.Now()); err != nil {
		return err
	}
	if err := h.PDS.DeleteOwnAccount(c.Request().Context(), did, in.Password, in.Token); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// emailRequest is the caller of a method that mails them, charged against
// their mail-request budget.
func (h *Handlers) emailRequest(c echo.Context) (did syntax.DID, err error) {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return "", err
	}
	if err := xrpc.Charge(c, h.EmailRequests, caller.DID.String(), h.PDS.Now()); err != nil {
		return "", err
	}
	return caller.DID, nil
}
