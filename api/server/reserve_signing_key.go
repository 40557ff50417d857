package server

import (
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// ReserveSigningKey serves com.atproto.server.reserveSigningKey: a repo
// signing key made ahead of an account migrating here (with did), so its
// PLC operation can name it; createAccount with that DID uses it.
func (h *Handlers) ReserveSigningKey(c echo.Context) error {
	var in struct {
		DID string `json:"did"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	var did syntax.DID
	if in.DID != "" {
		var err error
		if did, err = xrpc.ParseDID("did", in.DID); err != nil {
			return err
		}
	}
	key, err := h.PDS.ReserveSigningKey(c.Request().Context(), did)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"signingKey": key})
}
