package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// DeactivateAccount serves com.atproto.server.deactivateAccount: the repo
// stops accepting writes and relays learn it from the #account event.
func (h *Handlers) DeactivateAccount(c echo.Context) error {
	return h.setActive(c, false)
}

// ActivateAccount serves com.atproto.server.activateAccount.
func (h *Handlers) ActivateAccount(c echo.Context) error {
	return h.setActive(c, true)
}

func (h *Handlers) setActive(c echo.Context, active bool) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	if err := h.PDS.SetActive(c.Request().Context(), caller.DID, active); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
