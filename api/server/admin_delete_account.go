package server

import (
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// AdminDeleteAccount serves com.atproto.admin.deleteAccount
// (pds.DeleteAccount says what a deletion does).
func (h *Handlers) AdminDeleteAccount(c echo.Context) error {
	var in struct {
		DID string `json:"did"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	did, err := syntax.ParseDID(in.DID)
	if err != nil {
		return xrpc.InvalidRequest("invalid did %q", in.DID)
	}
	if err := h.PDS.DeleteAccount(c.Request().Context(), did); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
