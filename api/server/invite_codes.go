package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// CreateInviteCode serves com.atproto.server.createInviteCode (admin).
func (h *Handlers) CreateInviteCode(c echo.Context) error {
	var in struct {
		UseCount   int    `json:"useCount"`
		ForAccount string `json:"forAccount"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	codes, err := h.PDS.CreateInvites(c.Request().Context(), in.ForAccount, 1, in.UseCount)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"code": codes[0]})
}

// CreateInviteCodes serves com.atproto.server.createInviteCodes (admin).
func (h *Handlers) CreateInviteCodes(c echo.Context) error {
	var in struct {
		CodeCount   int      `json:"codeCount"`
		UseCount    int      `json:"useCount"`
		ForAccounts []string `json:"forAccounts"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if in.CodeCount <= 0 {
		in.CodeCount = 1
	}
	if in.CodeCount > 1000 {
		return xrpc.InvalidRequest("codeCount must be at most 1000")
	}
	type accountCodes struct {
		Account string   `json:"account"`
		Codes   []string `json:"codes"`
	}
	targets := in.ForAccounts
	if len(targets) == 0 {
		targets = []string{"admin"}
	}
	out := struct {
		Codes []accountCodes `json:"codes"`
	}{}
	for _, t := range targets {
		codes, err := h.PDS.CreateInvites(c.Request().Context(), t, in.CodeCount, in.UseCount)
		if err != nil {
			return err
		}
		out.Codes = append(out.Codes, accountCodes{Account: t, Codes: codes})
	}
	return c.JSON(http.StatusOK, out)
}
