package oauth

import (
	"errors"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/oauthcore"
	"github.com/pdslog/pdslog/api/xrpc"
)

// Resource is a verified OAuth caller of an XRPC route.
type Resource struct {
	DID         syntax.DID
	ClientID    string
	SessionID   string
	Permissions *oauthcore.Permissions
}

// Authenticate verifies a request to the resource server made with
// "Authorization: DPoP <token>" (RFC 9449 §7): a DPoP proof bound to the
// token (ath), the method and this URL, with a current server nonce and a
// new jti, signed by the key the token is bound to (cnf.jkt); the token's
// session live and the token its current one. Every answer carries a
// fresh DPoP-Nonce; a refusal is a 401 with WWW-Authenticate (DPoP
// error="use_dpop_nonce", "invalid_dpop_proof" or "invalid_token").
func (h *Handlers) Authenticate(c echo.Context, token string) (*Resource, error) {
	now := h.PDS.Now()
	c.Response().Header().Set("DPoP-Nonce", h.nonces.Next(now))
	proofs := c.Request().Header.Values("DPoP")
	var raw string
	if len(proofs) == 1 {
		raw = proofs[0]
	} else if len(proofs) > 1 {
		return nil, h.rsError(oauthcore.InvalidDPoPProof("DPoP header must contain a single proof"))
	}
	proof, err := oauthcore.VerifyProof(raw, oauthcore.ProofCheck{Method: c.Request().Method, URL: h.endpointURL(c.Request().URL.EscapedPath()),
		AccessToken: token, Nonces: h.nonces, Now: now})
	if err != nil {
		return nil, h.rsError(err)
	}
	if err := h.unique("dpop:"+proof.JTI, now.Add(oauthcore.ProofReplayWindow), now); err != nil {
		return nil, h.rsError(oauthcore.InvalidDPoPProof("DPoP proof replayed"))
	}
	claims, sess, err := h.PDS.VerifyOAuthAccess(c.Request().Context(), token)
	if err != nil {
		return nil, h.rsError(err)
	}
	if proof.JKT != claims.Cnf.JKT {
		return nil, h.rsError(oauthcore.InvalidToken("Invalid DPoP key binding"))
	}
	perms := oauthcore.NewPermissions(sess.Scope)
	if !perms.Has(oauthcore.ScopeAtproto) {
		return nil, h.rsError(oauthcore.InvalidToken(`OAuth token does not have "atproto" scope`))
	}
	return &Resource{DID: syntax.DID(claims.Subject), ClientID: claims.ClientID, SessionID: sess.ID, Permissions: perms}, nil
}

// BearerRefusal answers a DPoP-bound access token sent as a Bearer token,
// or nil when token is not one of this server's OAuth tokens.
func (h *Handlers) BearerRefusal(token string) error {
	if !h.PDS.OAuthSigner().Looks(token) {
		return nil
	}
	return h.rsError(oauthcore.InvalidToken("Access token is bound to a DPoP proof, but token type is Bearer"))
}

// rsError renders a resource server refusal as an XRPC error with the
// WWW-Authenticate header of RFC 6750 / RFC 9449.
func (h *Handlers) rsError(err error) error {
	var e *oauthcore.Error
	if !errors.As(err, &e) {
		return err
	}
	h.metrics.rsRefusals.WithLabelValues(e.Code).Inc()
	status := http.StatusUnauthorized
	if e.Code == "server_error" {
		status = http.StatusInternalServerError
	}
	return &xrpc.Error{Status: status, Name: e.Code, Message: e.Description,
		Header: http.Header{"WWW-Authenticate": {e.WWWAuthenticate("DPoP")}, "Access-Control-Expose-Headers": {"WWW-Authenticate, DPoP-Nonce"}}}
}
