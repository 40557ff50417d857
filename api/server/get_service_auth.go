package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/xrpc"
)

// GetServiceAuth serves com.atproto.server.getServiceAuth: a short-lived
// JWT signed with the account's repo key, for another service (aud),
// optionally bound to one method (lxm), under the reference's limits.
func (h *Handlers) GetServiceAuth(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	aud, err := xrpc.Query(c, "aud")
	if err != nil {
		return err
	}
	lxm := c.QueryParam("lxm")
	now := h.PDS.Now()
	var exp time.Time
	if raw := c.QueryParam("exp"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return xrpc.InvalidRequest("exp must be an integer (seconds since the epoch)")
		}
		exp = time.Unix(n, 0)
	}
	if err := auth.CheckServiceAuthRequest(auth.Scope(caller.Scope), aud, lxm, exp, now); err != nil {
		name := auth.XRPCErrorName(err)
		if name == "" {
			name = "InvalidRequest"
		}
		status := http.StatusBadRequest
		if errors.Is(err, auth.ErrInvalidToken) {
			status = http.StatusForbidden
		}
		return &xrpc.Error{Status: status, Name: name, Message: err.Error()}
	}
	key, err := h.PDS.SigningKey(c.Request().Context(), caller.DID)
	if err != nil {
		return err
	}
	if exp.IsZero() {
		exp = now.Add(time.Minute)
	}
	tok, err := auth.ServiceJWT(key, caller.DID, aud, lxm, exp)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"token": tok})
}
