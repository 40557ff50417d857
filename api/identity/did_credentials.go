package identity

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// GetRecommendedDidCredentials serves
// com.atproto.identity.getRecommendedDidCredentials: what the account's DID
// document should say for this PDS to host it (the PDS rotation key, the
// repo signing key, the handle and this endpoint).
func (h *Handlers) GetRecommendedDidCredentials(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	a, err := h.PDS.Accounts.Get(ctx, caller.DID)
	if err != nil {
		return xrpc.AuthRequired("account not found")
	}
	key, err := h.PDS.Keys.Get(ctx, a.DID, a.SigningKeySeq)
	if err != nil {
		return err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return err
	}
	rot, err := h.PDS.RotationKey.PublicKey()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"rotationKeys":        []string{rot.DIDKey()},
		"alsoKnownAs":         []string{"at://" + a.Handle.String()},
		"verificationMethods": map[string]string{"atproto": pub.DIDKey()},
		"services": map[string]any{"atproto_pds": map[string]string{
			"type": "AtprotoPersonalDataServer", "endpoint": h.PDS.Service.PublicURL()}},
	})
}
