package server

import (
	"net/http"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// DeactivateAccount serves com.atproto.server.deactivateAccount: the repo
// stops accepting writes and relays learn it from the #account event.
// With deleteAfter, the account is deleted at that time if it is still
// deactivated then.
func (h *Handlers) DeactivateAccount(c echo.Context) error {
	var in struct {
		DeleteAfter string `json:"deleteAfter"`
	}
	if c.Request().ContentLength != 0 {
		if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
			return err
		}
	}
	var at time.Time
	if in.DeleteAfter != "" {
		t, err := syntax.ParseDatetimeTime(in.DeleteAfter)
		if err != nil {
			return xrpc.InvalidRequest("deleteAfter must be a datetime")
		}
		at = t
	}
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	if err := h.PDS.SetActive(c.Request().Context(), caller.DID, false); err != nil {
		return err
	}
	if !at.IsZero() {
		if err := h.PDS.ScheduleDeletion(c.Request().Context(), caller.DID, at); err != nil {
			return err
		}
	}
	return c.NoContent(http.StatusOK)
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
