package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

type createAppPasswordInput struct {
	Name       string `json:"name"`
	Privileged bool   `json:"privileged"`
}

type appPasswordOutput struct {
	Name       string `json:"name"`
	Password   string `json:"password,omitempty"`
	CreatedAt  string `json:"createdAt"`
	Privileged bool   `json:"privileged"`
}

// CreateAppPassword serves com.atproto.server.createAppPassword (full
// access only: an app password cannot mint app passwords).
func (h *Handlers) CreateAppPassword(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in createAppPasswordInput
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	ap, err := h.PDS.CreateAppPassword(c.Request().Context(), caller.DID, in.Name, in.Privileged)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, appPasswordOutput{Name: ap.Name, Password: ap.Password, CreatedAt: ap.CreatedAt, Privileged: ap.Privileged})
}

// ListAppPasswords serves com.atproto.server.listAppPasswords.
func (h *Handlers) ListAppPasswords(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	aps, err := h.PDS.Accounts.AppPasswords(c.Request().Context(), caller.DID)
	if err != nil {
		return err
	}
	out := struct {
		Passwords []appPasswordOutput `json:"passwords"`
	}{Passwords: make([]appPasswordOutput, 0, len(aps))}
	for _, ap := range aps {
		out.Passwords = append(out.Passwords, appPasswordOutput{Name: ap.Name, CreatedAt: ap.CreatedAt, Privileged: ap.Privileged})
	}
	return c.JSON(http.StatusOK, out)
}

// RevokeAppPassword serves com.atproto.server.revokeAppPassword: the app
// password and every session opened with it end.
func (h *Handlers) RevokeAppPassword(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if err := h.PDS.RevokeAppPassword(c.Request().Context(), caller.DID, in.Name); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
