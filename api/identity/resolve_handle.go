package identity

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/accounts"
)

type resolveHandleOutput struct {
	DID string `json:"did"`
}

// ResolveHandle serves com.atproto.identity.resolveHandle: the handles
// this server hosts, then any other (resolve_foreign.go). The handle of an
// account that is not active (taken down, deactivated) resolves only for
// its owner and the admin.
func (h *Handlers) ResolveHandle(c echo.Context) error {
	raw, err := xrpc.Query(c, "handle")
	if err != nil {
		return err
	}
	handle, err := xrpc.ParseHandle("handle", raw)
	if err != nil {
		return err
	}
	a, err := h.PDS.Accounts.ByHandle(c.Request().Context(), handle.Normalize())
	if errors.Is(err, accounts.ErrNotFound) {
		return h.resolveForeign(c, handle.Normalize())
	}
	if err != nil {
		return err
	}
	// The reference does not find an inactive account by its handle; its
	// owner and the admin still do here, as they still read its repo.
	priv, err := h.Privileged(c, a.DID)
	if err != nil {
		return err
	}
	if !a.Active && !priv {
		return handleNotFound()
	}
	return c.JSON(http.StatusOK, resolveHandleOutput{DID: a.DID.String()})
}
