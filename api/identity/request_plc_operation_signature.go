package identity

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// RequestPLCOperationSignature serves
// com.atproto.identity.requestPlcOperationSignature: the code
// signPlcOperation needs is mailed to the caller.
func (h *Handlers) RequestPLCOperationSignature(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	if err := h.PDS.RequestPLCOperationSignature(c.Request().Context(), caller.DID); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
