// Package oauth serves pdslog's OAuth authorization server (the atproto
// OAuth profile) and its web pages, and verifies DPoP-bound access tokens
// for the resource server (the XRPC routes; api/auth_policy.go calls
// [Handlers.Authenticate]):
//
//   - discovery: /.well-known/oauth-protected-resource and
//     /.well-known/oauth-authorization-server (issuer = the PDS's public
//     URL), /oauth/jwks (empty: access tokens are signed with a secret);
//   - /oauth/par (pushed authorization requests: PKCE S256, DPoP, client
//     metadata documents, loopback clients, private_key_jwt), /oauth/token
//     (authorization_code and refresh_token grants), /oauth/revoke;
//   - the pages, server-rendered from embedded templates, working without
//     JavaScript: sign in (with the email code when the account has it),
//     choose account, consent, error (/oauth/authorize…), and the account
//     page (/account: connected apps, signed-in browsers, app passwords).
//
// The domain logic is api/pds (oauth.go) and api/pds/oauthcore; state is
// events in the log, projected by projections/oauth.
package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/oauthcore"
	"github.com/pdslog/pdslog/api/pds/ssrf"
	"github.com/pdslog/pdslog/api/ratelimit"
)

// Config configures the OAuth server.
type Config struct {
	// ProviderName is the name the pages show (PDS_OAUTH_PROVIDER_NAME);
	// "" means the PDS's hostname.
	ProviderName string
	// DevMode relaxes the Secure cookie flag (PDS_DEV_MODE) and the SSRF
	// guard of client metadata fetches.
	DevMode bool
	// ClientHTTP fetches client metadata documents and JWKS; nil means an
	// HTTP client with the SSRF guard (off in DevMode) and FetchTimeout.
	ClientHTTP *http.Client
	// Throttle limits sign-in attempts (shared with createSession).
	Throttle *ratelimit.LoginThrottle
	// PARLimiter, if set, limits pushed authorization requests per client
	// IP (each is an event in the log).
	PARLimiter *ratelimit.Limiter
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Handlers serves the OAuth endpoints and pages.
type Handlers struct {
	PDS      *pds.PDS
	cfg      Config
	issuer   string
	clients  *oauthcore.Resolver
	nonces   *oauthcore.Nonces
	replay   *oauthcore.Replay
	csrfKey  []byte
	pending  *pendingSignIns
	metrics  *metrics
	logger   *slog.Logger
	tmpl     *templates
	provider string
}

type metrics struct {
	grants     *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	rsRefusals *prometheus.CounterVec
	signIns    *prometheus.CounterVec
}

// New builds the OAuth server over p.
func New(p *pds.PDS, cfg Config) *Handlers {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Throttle == nil {
		cfg.Throttle = ratelimit.NewLoginThrottle(ratelimit.LoginConfig{})
	}
	hc := cfg.ClientHTTP
	if hc == nil {
		hc = &http.Client{Transport: ssrf.Transport(!cfg.DevMode), Timeout: oauthcore.FetchTimeout}
	}
	h := &Handlers{PDS: p, cfg: cfg, issuer: p.OAuthIssuer(), nonces: oauthcore.NewNonces(), replay: oauthcore.NewReplay(200_000),
		clients: &oauthcore.Resolver{HTTP: hc, Now: p.Now}, csrfKey: p.Tokens.DeriveKey("oauth csrf v1"),
		pending: newPendingSignIns(), logger: cfg.Logger.With("component", "oauth"), tmpl: loadTemplates(), provider: cfg.ProviderName}
	if h.provider == "" {
		h.provider = p.Service.Hostname
	}
	h.metrics = &metrics{
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pdslog_oauth_tokens_issued_total",
			Help: "OAuth token responses by grant type."}, []string{"grant"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pdslog_oauth_refusals_total",
			Help: "OAuth authorization server errors by endpoint and OAuth error code."}, []string{"endpoint", "error"}),
		rsRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pdslog_oauth_resource_refusals_total",
			Help: "XRPC requests with a DPoP-bound token refused, by OAuth error code (use_dpop_nonce is the normal first answer)."}, []string{"error"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pdslog_oauth_sign_ins_total",
			Help: "Sign-ins on the OAuth and account pages by outcome."}, []string{"outcome"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(h.metrics.grants, h.metrics.refusals, h.metrics.rsRefusals, h.metrics.signIns)
	}
	return h
}

// Issuer is the authorization server's issuer.
func (h *Handlers) Issuer() string { return h.issuer }

// Route is one endpoint of the OAuth server.
type Route struct {
	Method  string
	Path    string
	Handler echo.HandlerFunc
}

// Routes lists the OAuth server's endpoints and pages. None takes XRPC
// credentials: the token endpoints authenticate the client, the pages
// the device.
func (h *Handlers) Routes() []Route {
	g, p := http.MethodGet, http.MethodPost
	return []Route{
		{g, "/.well-known/oauth-protected-resource", h.protectedResource},
		{g, "/.well-known/oauth-authorization-server", h.authorizationServer},
		{g, "/oauth/jwks", h.jwks},
		{p, "/oauth/par", h.par},
		{p, "/oauth/token", h.token},
		{p, "/oauth/revoke", h.revoke},
		{g, "/oauth/authorize", h.authorize},
		{p, "/oauth/authorize/sign-in", h.authorizeSignIn},
		{p, "/oauth/authorize/consent", h.authorizeConsent},
		{g, "/oauth/assets/style.css", h.stylesheet},
		{g, "/account", h.account},
		{p, "/account/sign-in", h.accountSignIn},
		{p, "/account/sign-out", h.accountSignOut},
		{p, "/account/apps/revoke", h.accountRevokeApp},
		{p, "/account/devices/sign-out", h.accountSignOutDevice},
		{p, "/account/app-passwords", h.accountCreateAppPassword},
		{p, "/account/app-passwords/revoke", h.accountRevokeAppPassword},
	}
}

// endpointURL is the issuer's URL of path: what a DPoP proof's htu names.
func (h *Handlers) endpointURL(path string) string { return h.issuer + path }

// oauthError answers e as an OAuth error response (RFC 6749 §5.2) with a
// fresh DPoP nonce.
func (h *Handlers) oauthError(c echo.Context, endpoint string, err error) error {
	var e *oauthcore.Error
	if !errors.As(err, &e) {
		h.logger.Error("oauth: internal error", "endpoint", endpoint, "err", err)
		e = oauthcore.ServerError("The server could not complete the request")
	}
	h.metrics.refusals.WithLabelValues(endpoint, e.Code).Inc()
	hdr := c.Response().Header()
	hdr.Set("DPoP-Nonce", h.nonces.Next(h.PDS.Now()))
	hdr.Set("Cache-Control", "no-store")
	if e.Status == http.StatusUnauthorized && e.Code == "invalid_client" {
		hdr.Set("WWW-Authenticate", `Basic realm="oauth"`)
	}
	h.logger.Info("oauth: refused", "endpoint", endpoint, "error", e.Code, "description", e.Description, "remote_ip", c.RealIP())
	return c.JSON(e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

// checkProof verifies the DPoP proof of a request to the authorization
// server endpoint path (required unless optional) and that its jti is new.
func (h *Handlers) checkProof(c echo.Context, path string, optional bool) (*oauthcore.Proof, error) {
	hdr := c.Request().Header.Values("DPoP")
	if len(hdr) == 0 && optional {
		return nil, nil
	}
	if len(hdr) > 1 {
		return nil, oauthcore.InvalidDPoPProof("DPoP header must contain a single proof")
	}
	now := h.PDS.Now()
	raw := ""
	if len(hdr) == 1 {
		raw = hdr[0]
	}
	proof, err := oauthcore.VerifyProof(raw, oauthcore.ProofCheck{Method: c.Request().Method, URL: h.endpointURL(path), Nonces: h.nonces, Now: now})
	if err != nil {
		return nil, err
	}
	if err := h.unique("dpop:"+proof.JTI, now.Add(oauthcore.ProofReplayWindow), now); err != nil {
		return nil, oauthcore.InvalidDPoPProof("DPoP proof replayed")
	}
	return proof, nil
}

func (h *Handlers) unique(key string, until, now time.Time) error {
	ok, err := h.replay.Unique(key, until, now)
	if err != nil {
		h.logger.Warn("oauth: replay cache full: refusing", "err", err)
		return err
	}
	if !ok {
		return errors.New("replayed")
	}
	return nil
}

// authenticateClient resolves the form's client_id and checks its
// credentials; a confidential client's assertion is single use and its key
// must not be the DPoP key.
func (h *Handlers) authenticateClient(ctx context.Context, form url.Values, proof *oauthcore.Proof) (*oauthcore.Client, *oauthcore.ClientAuth, error) {
	id := form.Get("client_id")
	if id == "" {
		return nil, nil, oauthcore.InvalidRequest(`Missing "client_id"`)
	}
	client, err := h.clients.Resolve(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	now := h.PDS.Now()
	auth, err := client.Authenticate(form.Get("client_assertion_type"), form.Get("client_assertion"), h.issuer, now)
	if err != nil {
		return nil, nil, err
	}
	if auth.Method == "private_key_jwt" {
		if proof != nil && proof.JKT == auth.JKT {
			return nil, nil, oauthcore.InvalidRequest("The DPoP proof must be signed with a different key than the client assertion")
		}
		if err := h.unique("assertion:"+client.ID+":"+auth.JTI, auth.Exp, now); err != nil {
			return nil, nil, oauthcore.InvalidClient("private_key_jwt jti reused")
		}
	}
	return client, auth, nil
}

// readForm parses an application/x-www-form-urlencoded body of at most
// max bytes. Repeated parameters are refused (RFC 6749 §3.1).
func readForm(c echo.Context, max int64) (url.Values, error) {
	r := c.Request()
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return nil, oauthcore.InvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, max)
	if err := r.ParseForm(); err != nil {
		return nil, oauthcore.InvalidRequest("malformed or oversized form body")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, oauthcore.InvalidRequest("parameter %q is repeated", k)
		}
	}
	return r.PostForm, nil
}

// csrfToken is the CSRF token of forms shown to device: an HMAC of the
// device id, so only pages this server rendered for that browser carry it.
func (h *Handlers) csrfToken(device string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte("csrf\x00" + device))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:24])
}

func (h *Handlers) checkCSRF(device, token string) bool {
	return device != "" && token != "" && hmac.Equal([]byte(h.csrfToken(device)), []byte(token))
}
