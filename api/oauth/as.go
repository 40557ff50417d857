package oauth

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/oauthcore"
	"github.com/pdslog/pdslog/eventlog/events"
)

// protectedResource serves RFC 9728 metadata: this PDS is its own
// authorization server.
func (h *Handlers) protectedResource(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, map[string]any{
		"resource":                 h.issuer,
		"authorization_servers":    []string{h.issuer},
		"scopes_supported":         []string{},
		"bearer_methods_supported": []string{"header"},
		"resource_documentation":   "https://atproto.com",
	})
}

// authorizationServer serves RFC 8414 metadata with the fields the atproto
// profile requires (PAR required, S256 only, DPoP ES256, the iss response
// parameter, client metadata documents).
func (h *Handlers) authorizationServer(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	e := h.endpointURL
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                           h.issuer,
		"scopes_supported":                                 oauthcore.ScopesSupported,
		"subject_types_supported":                          []string{"public"},
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query", "fragment"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"ui_locales_supported":                             []string{"en-US"},
		"display_values_supported":                         []string{"page", "popup", "touch"},
		"prompt_values_supported":                          []string{"none", "login", "consent", "select_account"},
		"authorization_response_iss_parameter_supported":   true,
		"request_parameter_supported":                      false,
		"request_uri_parameter_supported":                  true,
		"require_request_uri_registration":                 true,
		"jwks_uri":                                         e("/oauth/jwks"),
		"authorization_endpoint":                           e("/oauth/authorize"),
		"token_endpoint":                                   e("/oauth/token"),
		"token_endpoint_auth_methods_supported":            []string{"none", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES256"},
		"revocation_endpoint":                              e("/oauth/revoke"),
		"pushed_authorization_request_endpoint":            e("/oauth/par"),
		"require_pushed_authorization_requests":            true,
		"dpop_signing_alg_values_supported":                []string{"ES256"},
		"protected_resources":                              []string{h.issuer},
		"client_id_metadata_document_supported":            true,
	})
}

// jwks serves the authorization server's public keys: none, since access
// tokens are signed with a secret only this server holds (as the
// reference PDS).
func (h *Handlers) jwks(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"keys": []any{}})
}

// maxFormBody bounds the token endpoints' bodies.
const maxFormBody = 32 << 10

// par serves /oauth/par (RFC 9126): a client pushes its authorization
// request, authenticated, bound to a DPoP key, and validated against its
// metadata; the answer is the request_uri for /oauth/authorize.
func (h *Handlers) par(c echo.Context) error {
	if lim := h.cfg.PARLimiter; lim != nil {
		if d := lim.Charge(c.RealIP(), 1, time.Now()); !d.OK {
			d.SetHeaders(c.Response().Header())
			h.metrics.refusals.WithLabelValues("par", "rate_limited").Inc()
			return c.JSON(http.StatusTooManyRequests, map[string]string{"error": "invalid_request", "error_description": "Too many authorization requests from this address"})
		}
	}
	r, err := h.pushRequest(c)
	if err != nil {
		return h.oauthError(c, "par", err)
	}
	c.Response().Header().Set("DPoP-Nonce", h.nonces.Next(h.PDS.Now()))
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, map[string]any{"request_uri": oauthcore.RequestURIPrefix + r.ID,
		"expires_in": int(oauthcore.RequestLifetime.Seconds())})
}

func (h *Handlers) pushRequest(c echo.Context) (*events.OAuthRequest, error) {
	form, err := readForm(c, maxFormBody)
	if err != nil {
		return nil, err
	}
	proof, err := h.checkProof(c, "/oauth/par", form.Get("dpop_jkt") != "")
	if err != nil {
		return nil, err
	}
	ctx := c.Request().Context()
	client, auth, err := h.authenticateClient(ctx, form, proof)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"request", "claims", "id_token_hint", "nonce", "authorization_details"} {
		if form.Has(k) {
			return nil, oauthcore.InvalidRequest("Unsupported %q parameter", k)
		}
	}
	if form.Has("request_uri") {
		return nil, oauthcore.InvalidRequest(`"request_uri" is not allowed in a pushed authorization request`)
	}
	if rt := form.Get("response_type"); rt != "code" {
		return nil, oauthcore.InvalidRequest(`atproto only supports the "code" response_type (got %q)`, rt)
	}
	redirect := form.Get("redirect_uri")
	if redirect == "" {
		if redirect = client.DefaultRedirectURI(); redirect == "" {
			return nil, oauthcore.InvalidRequest(`Missing "redirect_uri"`)
		}
	} else if !client.RedirectURIAllowed(redirect) {
		return nil, oauthcore.InvalidRequest("Invalid redirect_uri %s: it is not one of the client's redirect_uris", redirect)
	}
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "":
		return nil, oauthcore.InvalidRequest("Use of PKCE is required")
	case method != "S256":
		return nil, oauthcore.InvalidRequest(`atproto requires use of "S256" code_challenge_method (got %q)`, method)
	case !oauthcore.ValidChallenge(challenge):
		return nil, oauthcore.InvalidRequest("Invalid code_challenge")
	}
	scope := form.Get("scope")
	toks, err := oauthcore.ParseRequestScope(scope)
	if err != nil {
		return nil, err
	}
	declared := strings.Fields(client.Metadata.Scope)
	for _, t := range toks {
		if !slices.Contains(declared, t) {
			return nil, oauthcore.InvalidScope("Scope %q is not declared in the client metadata", t)
		}
	}
	prompt := form.Get("prompt")
	switch prompt {
	case "", "login", "consent", "select_account", "none":
	case "create":
		prompt = "login" // this server offers no sign-up page: sign in instead
	default:
		return nil, oauthcore.InvalidRequest("Unsupported prompt %q", prompt)
	}
	if !client.Confidential() {
		if prompt == "none" {
			return nil, oauthcore.InvalidRequest("Public clients are not allowed to use silent sign-on (prompt=none)")
		}
		prompt = "consent" // a public client's identity is not proven: always ask
	}
	hint := strings.ToLower(form.Get("login_hint"))
	if hint != "" && !validHint(hint) {
		return nil, oauthcore.InvalidRequest("Invalid login_hint %q", hint)
	}
	mode := form.Get("response_mode")
	switch mode {
	case "":
		mode = "query"
	case "query", "fragment":
	default:
		return nil, oauthcore.InvalidRequest("Unsupported response_mode %q", mode)
	}
	state := form.Get("state")
	if len(state) > 1024 {
		return nil, oauthcore.InvalidRequest("state is too long")
	}
	jkt := form.Get("dpop_jkt")
	if proof != nil {
		if jkt != "" && jkt != proof.JKT {
			return nil, oauthcore.InvalidDPoPProof("DPoP proof key does not match dpop_jkt")
		}
		jkt = proof.JKT
	}
	req := events.OAuthRequest{ClientID: client.ID, ClientAuth: events.OAuthClientAuth{Method: auth.Method, KeyID: auth.KeyID, JKT: auth.JKT},
		Confidential: client.Confidential(), RedirectURI: redirect, Scope: strings.Join(toks, " "), State: state,
		CodeChallenge: challenge, LoginHint: hint, Prompt: prompt, ResponseMode: mode, DPoPJKT: jkt}
	r, err := h.PDS.PushAuthorizationRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	h.logger.Info("oauth: request pushed", "client_id", client.ID, "request", r.ID, "scope", req.Scope)
	return &r.OAuthRequest, nil
}

// validHint: a login_hint is a handle or a DID.
func validHint(s string) bool {
	if strings.HasPrefix(s, "did:") {
		return len(s) < 2048 && !strings.ContainsAny(s, " \t\n")
	}
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// token serves /oauth/token: the authorization_code and refresh_token
// grants, each with a DPoP proof (server nonce required, jti single use)
// and the client's authentication.
func (h *Handlers) token(c echo.Context) error {
	resp, grant, err := h.grant(c)
	if err != nil {
		return h.oauthError(c, "token", err)
	}
	h.metrics.grants.WithLabelValues(grant).Inc()
	hdr := c.Response().Header()
	hdr.Set("DPoP-Nonce", h.nonces.Next(h.PDS.Now()))
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, resp)
}

func (h *Handlers) grant(c echo.Context) (any, string, error) {
	form, err := readForm(c, maxFormBody)
	if err != nil {
		return nil, "", err
	}
	proof, err := h.checkProof(c, "/oauth/token", false)
	if err != nil {
		return nil, "", err
	}
	ctx := c.Request().Context()
	client, auth, err := h.authenticateClient(ctx, form, proof)
	if err != nil {
		return nil, "", err
	}
	grant := form.Get("grant_type")
	if grant != "authorization_code" && grant != "refresh_token" {
		return nil, "", oauthcore.UnsupportedGrantType("Grant type %q is not supported", grant)
	}
	if !slices.Contains(client.Metadata.GrantTypes, grant) {
		return nil, "", oauthcore.InvalidGrant("%q grant type is not allowed for this client", grant)
	}
	tr := pdsTokenRequest(client, auth, proof)
	switch grant {
	case "authorization_code":
		tr.Code, tr.RedirectURI, tr.CodeVerifier = form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
		if tr.Code == "" {
			return nil, "", oauthcore.InvalidRequest(`Missing "code"`)
		}
		resp, err := h.PDS.ExchangeCode(ctx, tr)
		if err == nil {
			h.logger.Info("oauth: code exchanged", "client_id", client.ID, "did", resp.Sub)
		}
		return resp, grant, err
	default:
		tr.RefreshToken = form.Get("refresh_token")
		if tr.RefreshToken == "" {
			return nil, "", oauthcore.InvalidRequest(`Missing "refresh_token"`)
		}
		resp, err := h.PDS.RefreshOAuth(ctx, tr)
		return resp, grant, err
	}
}

// revoke serves /oauth/revoke (RFC 7009): the session of the token ends;
// an unknown token is not an error.
func (h *Handlers) revoke(c echo.Context) error {
	err := func() error {
		form, err := readForm(c, maxFormBody)
		if err != nil {
			return err
		}
		proof, err := h.checkProof(c, "/oauth/revoke", false)
		if err != nil {
			return err
		}
		client, _, err := h.authenticateClient(c.Request().Context(), form, proof)
		if err != nil {
			return err
		}
		tok := form.Get("token")
		if tok == "" {
			return oauthcore.InvalidRequest(`Missing "token"`)
		}
		return h.PDS.RevokeOAuthToken(c.Request().Context(), tok, client.ID)
	}()
	var oe *oauthcore.Error
	if errors.As(err, &oe) && oe.Code == "invalid_grant" {
		err = nil // RFC 7009 §2.2: a token of another client is not revealed
	}
	if err != nil {
		return h.oauthError(c, "revoke", err)
	}
	c.Response().Header().Set("DPoP-Nonce", h.nonces.Next(h.PDS.Now()))
	return c.JSON(http.StatusOK, map[string]any{})
}

func pdsTokenRequest(client *oauthcore.Client, auth *oauthcore.ClientAuth, proof *oauthcore.Proof) pds.TokenRequest {
	return pds.TokenRequest{Client: client, Auth: auth, Proof: proof}
}
