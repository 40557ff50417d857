package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// UpdateAccountHandle serves com.atproto.admin.updateAccountHandle: any
// valid handle (pds.AdminUpdateHandle).
func (h *Handlers) UpdateAccountHandle(c echo.Context) error {
	var in struct {
		DID    string `json:"did"`
		Handle string `json:"handle"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	did, err := xrpc.ParseDID("did", in.DID)
	if err != nil {
		return err
	}
	handle, err := xrpc.ParseHandle("handle", in.Handle)
	if err != nil {
		return err
	}
	if err := h.PDS.AdminUpdateHandle(c.Request().Context(), did, handle); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// UpdateAccountEmail serves com.atproto.admin.updateAccountEmail (account
// is a DID or a handle, as the reference takes it).
func (h *Handlers) UpdateAccountEmail(c echo.Context) error {
	var in struct {
		Account string `json:"account"`
		Email   string `json:"email"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	id, err := xrpc.ParseAtIdentifier("account", in.Account)
	if err != nil {
		return err
	}
	a, err := h.PDS.FindAccount(c.Request().Context(), id.String())
	if err != nil || a == nil {
		return xrpc.InvalidRequest("Account does not exist: %s", in.Account)
	}
	if err := h.PDS.AdminUpdateEmail(c.Request().Context(), a.DID, in.Email); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// UpdateAccountPassword serves com.atproto.admin.updateAccountPassword:
// the new password ends every session of the account.
func (h *Handlers) UpdateAccountPassword(c echo.Context) error {
	var in struct {
		DID      string `json:"did"`
		Password string `json:"password"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	did, err := xrpc.ParseDID("did", in.DID)
	if err != nil {
		return err
	}
	if err := h.PDS.AdminUpdatePassword(c.Request().Context(), did, in.Password); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
