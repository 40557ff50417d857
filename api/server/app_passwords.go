package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog/events"
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
func (s *Sessions) CreateAppPassword(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in createAppPasswordInput
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 100 {
		return xrpc.InvalidRequest("name must be 1 to 100 characters")
	}
	ctx := c.Request().Context()
	unlock := s.lock(caller.DID)
	defer unlock()
	existing, err := s.Accounts.AppPasswords(ctx, caller.DID)
	if err != nil {
		return err
	}
	for _, ap := range existing {
		if ap.Name == name {
			return xrpc.InvalidRequest("An app password with that name already exists: %s", name)
		}
	}
	pw := auth.NewAppPassword()
	hash, err := auth.HashAppPassword(caller.DID, pw)
	if err != nil {
		return err
	}
	now := s.now().UTC().Format(time.RFC3339Nano)
	ev, err := events.New(caller.DID, &events.AppPasswordCreated{Name: name, Hash: hash, Privileged: in.Privileged, CreatedAt: now})
	if err != nil {
		return err
	}
	if err := s.append(ctx, ev); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, appPasswordOutput{Name: name, Password: pw, CreatedAt: now, Privileged: in.Privileged})
}

// ListAppPasswords serves com.atproto.server.listAppPasswords.
func (s *Sessions) ListAppPasswords(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	aps, err := s.Accounts.AppPasswords(c.Request().Context(), caller.DID)
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
func (s *Sessions) RevokeAppPassword(c echo.Context) error {
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
	ev, err := events.New(caller.DID, &events.AppPasswordRevoked{Name: in.Name})
	if err != nil {
		return err
	}
	if err := s.append(c.Request().Context(), ev); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
