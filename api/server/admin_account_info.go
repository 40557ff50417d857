package server

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/accounts"
)

// accountView is com.atproto.admin.defs#accountView as the reference's
// formatAccountInfo fills it.
type accountView struct {
	DID              string        `json:"did"`
	Handle           string        `json:"handle"`
	Email            string        `json:"email,omitempty"`
	IndexedAt        string        `json:"indexedAt"`
	EmailConfirmedAt string        `json:"emailConfirmedAt,omitempty"`
	InvitedBy        *inviteCode   `json:"invitedBy,omitempty"`
	Invites          []*inviteCode `json:"invites"`
	InvitesDisabled  bool          `json:"invitesDisabled"`
	DeactivatedAt    string        `json:"deactivatedAt,omitempty"`
}

// inviteCode is com.atproto.server.defs#inviteCode.
type inviteCode struct {
	Code       string          `json:"code"`
	Available  int             `json:"available"`
	Disabled   bool            `json:"disabled"`
	ForAccount string          `json:"forAccount"`
	CreatedBy  string          `json:"createdBy"`
	CreatedAt  string          `json:"createdAt"`
	Uses       []inviteCodeUse `json:"uses"`
}

type inviteCodeUse struct {
	UsedBy string `json:"usedBy"`
	UsedAt string `json:"usedAt"`
}

// inviteIndex is every invite code, viewed, with who used which: built
// once per request (a PDS holds few codes).
type inviteIndex struct {
	all       []*inviteCode
	byAccount map[string][]*inviteCode
	usedBy    map[string]*inviteCode
}

func (h *Handlers) inviteIndex(ctx context.Context) (*inviteIndex, error) {
	invs, err := h.PDS.Accounts.Invites(ctx)
	if err != nil {
		return nil, err
	}
	ix := &inviteIndex{byAccount: map[string][]*inviteCode{}, usedBy: map[string]*inviteCode{}}
	for i := range invs {
		v := h.viewInvite(ctx, &invs[i])
		ix.all = append(ix.all, v)
		ix.byAccount[v.ForAccount] = append(ix.byAccount[v.ForAccount], v)
		for _, u := range v.Uses {
			ix.usedBy[u.UsedBy] = v
		}
	}
	return ix, nil
}

// viewInvite renders an invite code, its uses newest first as the
// reference orders them.
func (h *Handlers) viewInvite(ctx context.Context, inv *accounts.InviteState) *inviteCode {
	v := &inviteCode{Code: inv.Code, Available: inv.Available, Disabled: inv.Disabled, ForAccount: inv.ForAccount,
		CreatedBy: inv.CreatedBy, CreatedAt: inv.CreatedAt, Uses: []inviteCodeUse{}}
	if v.ForAccount == "" {
		v.ForAccount = "admin"
	}
	for i, did := range inv.UsedBy {
		at := ""
		if i < len(inv.UsedAt) {
			at = inv.UsedAt[i]
		}
		if at == "" { // recorded before uses had times: the signup's
			if a, err := h.PDS.Accounts.Get(ctx, did); err == nil {
				at = a.CreatedAt
			} else {
				at = inv.CreatedAt
			}
		}
		v.Uses = append(v.Uses, inviteCodeUse{UsedBy: did.String(), UsedAt: at})
	}
	slices.Reverse(v.Uses)
	return v
}

func (h *Handlers) accountView(a *accounts.Account, ix *inviteIndex) *accountView {
	v := &accountView{DID: a.DID.String(), Handle: a.Handle.String(), Email: a.Email, IndexedAt: a.CreatedAt,
		InvitedBy: ix.usedBy[a.DID.String()], Invites: ix.byAccount[a.DID.String()], InvitesDisabled: a.InvitesDisabled,
		DeactivatedAt: a.DeactivatedAt}
	if v.Handle == "" {
		v.Handle = syntax.HandleInvalid.String()
	}
	if v.Invites == nil {
		v.Invites = []*inviteCode{}
	}
	if a.EmailConfirmed {
		// confirmed before the time was kept: the signup's
		v.EmailConfirmedAt = cmpOr(a.EmailConfirmedAt, a.CreatedAt)
	}
	return v
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// GetAccountInfo serves com.atproto.admin.getAccountInfo: any account,
// deactivated or taken down included.
func (h *Handlers) GetAccountInfo(c echo.Context) error {
	did, err := xrpc.ParseDID("did", c.QueryParam("did"))
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	a, err := h.PDS.Accounts.Get(ctx, did)
	if errors.Is(err, accounts.ErrNotFound) {
		return &xrpc.Error{Status: http.StatusBadRequest, Name: "NotFound", Message: "Account not found"}
	}
	if err != nil {
		return err
	}
	ix, err := h.inviteIndex(ctx)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.accountView(a, ix))
}

// GetAccountInfos serves com.atproto.admin.getAccountInfos: the accounts
// of the DIDs given that exist, in the order given, each once.
func (h *Handlers) GetAccountInfos(c echo.Context) error {
	raw := c.QueryParams()["dids"]
	if len(raw) == 0 {
		return xrpc.InvalidRequest(`Params must have the property "dids"`)
	}
	ctx := c.Request().Context()
	ix, err := h.inviteIndex(ctx)
	if err != nil {
		return err
	}
	out := struct {
		Infos []*accountView `json:"infos"`
	}{Infos: []*accountView{}}
	seen := map[syntax.DID]bool{}
	for _, r := range raw {
		did, err := xrpc.ParseDID("dids", r)
		if err != nil {
			return err
		}
		if seen[did] {
			continue
		}
		seen[did] = true
		a, err := h.PDS.Accounts.Get(ctx, did)
		if errors.Is(err, accounts.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		out.Infos = append(out.Infos, h.accountView(a, ix))
	}
	return c.JSON(http.StatusOK, out)
}
