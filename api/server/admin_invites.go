package server

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// GetInviteCodes serves com.atproto.admin.getInviteCodes: every code,
// newest first (sort "recent", the default) or most used first ("usage"),
// paged with the reference's keyset cursors ("<ms or uses>::<code>").
func (h *Handlers) GetInviteCodes(c echo.Context) error {
	sort := c.QueryParam("sort")
	if sort == "" {
		sort = "recent"
	}
	if sort != "recent" && sort != "usage" {
		return xrpc.InvalidRequest("unknown sort method: %s", sort)
	}
	limit, err := xrpc.Limit(c, 100, 500)
	if err != nil {
		return err
	}
	ix, err := h.inviteIndex(c.Request().Context())
	if err != nil {
		return err
	}
	primary := func(v *inviteCode) int64 {
		if sort == "usage" {
			return int64(len(v.Uses))
		}
		t, err := time.Parse(time.RFC3339Nano, v.CreatedAt)
		if err != nil {
			return 0
		}
		return t.UnixMilli()
	}
	codes := ix.all
	slices.SortFunc(codes, func(a, b *inviteCode) int { // descending
		return cmp.Or(cmp.Compare(primary(b), primary(a)), strings.Compare(b.Code, a.Code))
	})
	if cur := c.QueryParam("cursor"); cur != "" {
		p, code, ok := strings.Cut(cur, "::")
		n, err := strconv.ParseInt(p, 10, 64)
		if !ok || err != nil {
			return xrpc.InvalidRequest("Malformed cursor")
		}
		i := 0
		for i < len(codes) && cmp.Or(cmp.Compare(primary(codes[i]), n), strings.Compare(codes[i].Code, code)) >= 0 {
			i++
		}
		codes = codes[i:]
	}
	codes = codes[:min(limit, len(codes))]
	out := struct {
		Cursor string        `json:"cursor,omitempty"`
		Codes  []*inviteCode `json:"codes"`
	}{Codes: codes}
	if out.Codes == nil {
		out.Codes = []*inviteCode{}
	}
	if len(codes) > 0 {
		last := codes[len(codes)-1]
		out.Cursor = strconv.FormatInt(primary(last), 10) + "::" + last.Code
	}
	return c.JSON(http.StatusOK, out)
}

// DisableAccountInvites serves com.atproto.admin.disableAccountInvites.
func (h *Handlers) DisableAccountInvites(c echo.Context) error { return h.setAccountInvites(c, true) }

// EnableAccountInvites serves com.atproto.admin.enableAccountInvites.
func (h *Handlers) EnableAccountInvites(c echo.Context) error { return h.setAccountInvites(c, false) }

func (h *Handlers) setAccountInvites(c echo.Context, disabled bool) error {
	var in struct {
		Account string `json:"account"`
		Note    string `json:"note"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	did, err := xrpc.ParseDID("account", in.Account)
	if err != nil {
		return err
	}
	if err := h.PDS.SetAccountInvitesDisabled(c.Request().Context(), did, disabled); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// DisableInviteCodes serves com.atproto.admin.disableInviteCodes: the
// codes named, and every code of the accounts named.
func (h *Handlers) DisableInviteCodes(c echo.Context) error {
	var in struct {
		Codes    []string `json:"codes"`
		Accounts []string `json:"accounts"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if err := h.PDS.DisableInviteCodes(c.Request().Context(), in.Codes, in.Accounts); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// GetAccountInviteCodes serves com.atproto.server.getAccountInviteCodes:
// the caller's own codes that are not disabled, the used-up ones only with
// includeUsed. Codes are made by the admin here (createAvailable makes
// none: the reference makes them only with PDS_INVITE_INTERVAL, which
// pdslog does not have).
func (h *Handlers) GetAccountInviteCodes(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	includeUsed := true
	if c.QueryParam("includeUsed") != "" {
		if includeUsed, err = xrpc.Bool(c, "includeUsed"); err != nil {
			return err
		}
	}
	if c.QueryParam("createAvailable") != "" {
		if _, err := xrpc.Bool(c, "createAvailable"); err != nil {
			return err
		}
	}
	ix, err := h.inviteIndex(c.Request().Context())
	if err != nil {
		return err
	}
	out := struct {
		Codes []*inviteCode `json:"codes"`
	}{Codes: []*inviteCode{}}
	for _, v := range ix.byAccount[caller.DID.String()] {
		if v.Disabled || (!includeUsed && len(v.Uses) >= v.Available) {
			continue
		}
		out.Codes = append(out.Codes, v)
	}
	return c.JSON(http.StatusOK, out)
}
