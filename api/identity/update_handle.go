package identity

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// UpdateHandle serves com.atproto.identity.updateHandle for handles under
// the service's domains (pds.UpdateHandle says what changes).
func (h *Handlers) UpdateHandle(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in struct {
		Handle string `json:"handle"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	handle, err := xrpc.ParseHandle("handle", in.Handle)
	if err != nil {
		return err
	}
	if !h.PDS.Service.HostsHandle(handle.Normalize()) {
		return &xrpc.Error{Status: http.StatusBadRequest, Name: "UnsupportedDomain", Message: "Not a supported handle domain"}
	}
	if h.HandleLimiter != nil {
		d := h.HandleLimiter.Charge(caller.DID.String(), 1, h.PDS.Now())
		if !d.OK {
			return xrpc.TooManyRequests(c, d)
		}
		xrpc.RateLimit(c, d)
	}
	if err := h.PDS.UpdateHandle(c.Request().Context(), caller.DID, handle); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
