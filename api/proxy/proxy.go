package proxy

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/identity"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/api/pds/ssrf"
	"github.com/pdslog/pdslog/api/xrpc"
)

// The reference's proxy limits (PDS_PROXY_HEADERS_TIMEOUT,
// PDS_PROXY_BODY_TIMEOUT, PDS_PROXY_MAX_RESPONSE_SIZE).
const (
	// DefaultHeadersTimeout bounds the wait for the upstream's status and
	// headers.
	DefaultHeadersTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds the wait for each piece of the upstream's
	// body (an idle timeout, as undici's bodyTimeout).
	DefaultBodyTimeout = 30 * time.Second
	// DefaultMaxResponseSize bounds an upstream answer's body.
	DefaultMaxResponseSize = 10 << 20
)

// Service ids of the default routes.
const (
	ServiceAppView = "bsky_appview"
	ServiceLabeler = "atproto_labeler"
)

// HeaderProxy is the request header naming the service to forward to.
const HeaderProxy = "atproto-proxy"

// Service is a service the proxy forwards to without an atproto-proxy
// header: its DID (the audience of the tokens it receives) and base URL.
type Service struct {
	DID syntax.DID
	URL string
}

// Config is the proxy's configuration: the serve settings.
type Config struct {
	// AppView serves app.bsky.* (PDS_BSKY_APP_VIEW_URL, _DID); nil means
	// app.bsky.* without an atproto-proxy header is not served.
	AppView *Service
	// AppViewCDNURLPattern, if set, builds image URLs in read-after-write
	// answers (PDS_BSKY_APP_VIEW_CDN_URL_PATTERN, printf-style with three
	// %s: preset, DID, CID); otherwise they point at this PDS's getBlob.
	AppViewCDNURLPattern string
	// ModService serves tools.ozone.* (PDS_MOD_SERVICE_URL, _DID).
	ModService *Service
	// ReportService serves com.atproto.moderation.createReport
	// (PDS_REPORT_SERVICE_URL, _DID); nil means ModService.
	ReportService *Service
	// PLC resolves did:plc service DIDs.
	PLC *plc.Client
	// DisableSSRFProtection lets the proxy reach http:// URLs and private,
	// loopback and link-local addresses (PDS_DISABLE_SSRF_PROTECTION, or
	// dev mode).
	DisableSSRFProtection bool
	// ServiceAuthCombinedAud makes the aud of forwarded calls' tokens the
	// full DID#service reference instead of the bare service DID
	// (PDS_PROXY_SERVICE_AUTH_COMBINED_AUD; the reference's
	// proxy.serviceAuthCombinedAud, off by default because deployed
	// AppViews compare aud against their bare DID).
	ServiceAuthCombinedAud bool
	// Limits; zero means the Default* constants.
	HeadersTimeout  time.Duration
	BodyTimeout     time.Duration
	MaxResponseSize int64
	// HandleNameservers ("host:port") answer the DNS questions of
	// resolveHandle for handles hosted elsewhere (PDSLOG_HANDLE_NAMESERVERS;
	// none: the system's resolver); HandleBackupNameservers are asked when
	// they say a record does not exist (PDS_HANDLE_BACKUP_NAMESERVERS).
	HandleNameservers       []string
	HandleBackupNameservers []string
	// DID document cache; zero means the resolve.go defaults.
	DIDCacheStaleTTL time.Duration
	DIDCacheMaxTTL   time.Duration
	ResolveTimeout   time.Duration
}

// Deps are the proxy's collaborators.
type Deps struct {
	PDS    *pds.PDS // accounts, records and signing keys; the log for read-after-write
	Logger *slog.Logger
	// Directory, if set, resolves service DIDs instead of a Resolver built
	// from Config (tests).
	Directory identity.Directory
}

// Proxy forwards XRPC calls to other services with service auth.
type Proxy struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	client   *http.Client
	resolver identity.Directory
	signer   *Signer
}

// New returns a proxy.
func New(cfg Config, deps Deps) *Proxy {
	if cfg.HeadersTimeout <= 0 {
		cfg.HeadersTimeout = DefaultHeadersTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MaxResponseSize <= 0 {
		cfg.MaxResponseSize = DefaultMaxResponseSize
	}
	if cfg.ReportService == nil {
		cfg.ReportService = cfg.ModService
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	guard := !cfg.DisableSSRFProtection
	client := &http.Client{
		Transport: ssrf.Transport(guard),
		// XRPC answers are never redirects to follow: pass them on.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resolver := deps.Directory
	if resolver == nil {
		r := &identity.Resolver{StaleTTL: cfg.DIDCacheStaleTTL, MaxTTL: cfg.DIDCacheMaxTTL, Timeout: cfg.ResolveTimeout,
			Web: &http.Client{Transport: ssrf.Transport(guard)}, Logger: deps.Logger}
		if cfg.PLC != nil {
			c := *cfg.PLC
			r.PLC = &c
		}
		resolver = r
	}
	return &Proxy{cfg: cfg, deps: deps, log: deps.Logger, client: client, resolver: resolver,
		signer: &Signer{Accounts: deps.PDS.Accounts, Keys: deps.PDS.Keys}}
}

// Target is where a call goes: a service DID, the id of its entry in the
// DID document, and the service's URL.
type Target struct {
	DID       syntax.DID
	ServiceID string
	URL       string
}

// Ref is the target's DID#service reference.
func (t *Target) Ref() string { return t.DID.String() + "#" + t.ServiceID }

// audience is the aud of the tokens sent to t.
func (p *Proxy) audience(t *Target) string {
	if p.cfg.ServiceAuthCombinedAud {
		return t.Ref()
	}
	return t.DID.String()
}

// defaultRoute is where nsid goes without an atproto-proxy header, or nil:
// app.bsky.* to the AppView, tools.ozone.* to the moderation service,
// com.atproto.moderation.createReport to the report service.
func (p *Proxy) defaultRoute(nsid syntax.NSID) *Target {
	lower := strings.ToLower(nsid.String())
	var svc *Service
	id := ServiceLabeler
	switch {
	case strings.HasPrefix(lower, "app.bsky."):
		svc, id = p.cfg.AppView, ServiceAppView
	case strings.HasPrefix(lower, "tools.ozone."):
		svc = p.cfg.ModService
	case lower == "com.atproto.moderation.createreport":
		svc = p.cfg.ReportService
	}
	if svc == nil {
		return nil
	}
	return &Target{DID: svc.DID, ServiceID: id, URL: svc.URL}
}

// IsLocalAppView reports whether a request for an app.bsky.* method is for
// the configured AppView: no atproto-proxy header, or one naming it. The
// methods this PDS answers in the AppView's place (preferences) serve such
// requests themselves and forward the others.
func (p *Proxy) IsLocalAppView(c echo.Context) bool {
	h := c.Request().Header.Get(HeaderProxy)
	if h == "" {
		return true
	}
	return p.cfg.AppView != nil && h == p.cfg.AppView.DID.String()+"#"+ServiceAppView
}

// methodOf is the NSID of an XRPC request path.
func methodOf(c echo.Context) (syntax.NSID, error) {
	raw := strings.TrimPrefix(c.Request().URL.Path, "/xrpc/")
	nsid, err := syntax.ParseNSID(raw)
	if err != nil {
		return "", xrpc.MethodNotImplemented(raw)
	}
	return nsid, nil
}

// errBadTokenMethod is the reference's refusal of protected methods, and
// of privileged ones for ordinary app passwords.
func errBadTokenMethod(nsid syntax.NSID, why string) *xrpc.Error {
	return &xrpc.Error{Status: http.StatusBadRequest, Name: "InvalidToken", Message: fmt.Sprintf("Bad token method: %s %s", nsid, why)}
}

// privileged reports whether nsid needs a privileged session to be
// proxied: the reference's PRIVILEGED_METHODS and the whole chat.bsky.*
// namespace.
func privileged(nsid syntax.NSID) bool {
	return auth.IsPrivilegedMethod(nsid.String()) || strings.HasPrefix(strings.ToLower(nsid.String()), "chat.bsky.")
}

// Handle is the catch-all of XRPC methods this server does not serve: it
// forwards the call to the service named by the atproto-proxy header, or
// to the method's default service, with a service-auth token signed by
// the caller's repo key, and streams the answer back. In order:
//
//   - methods other than GET, HEAD and POST: 400;
//   - protected methods (account and credential management) are never
//     forwarded: 400 InvalidToken;
//   - no header and no default route: 501 MethodNotImplemented;
//   - no credentials: 401;
//   - privileged methods (chat.bsky.*, createAccount) with an ordinary app
//     password: 400 InvalidToken;
//   - a malformed header, an unresolvable DID or a DID document without
//     the service: 400 InvalidRequest naming what failed.
func (p *Proxy) Handle(c echo.Context) error {
	nsid, err := methodOf(c)
	if err != nil {
		return err
	}
	req := c.Request()
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return xrpc.InvalidRequest("XRPC requests only supports GET and POST")
	}
	if auth.IsProtectedMethod(nsid.String()) {
		return errBadTokenMethod(nsid, "is account management: call it on the PDS, it is never proxied")
	}
	header := req.Header.Get(HeaderProxy)
	if header == "" && p.defaultRoute(nsid) == nil {
		return xrpc.MethodNotImplemented(nsid.String())
	}
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	if privileged(nsid) && !auth.Scope(caller.Scope).IsPrivileged() {
		return errBadTokenMethod(nsid, "needs a full session or a privileged app password")
	}
	t, err := p.route(req.Context(), header, nsid)
	if err != nil {
		return err
	}
	if err := checkOAuthScope(c, t, nsid); err != nil {
		return err
	}
	up, err := p.send(c, t, nsid, caller.DID, modeStream)
	if err != nil {
		return err
	}
	defer up.close()
	if up.resp.StatusCode >= 400 {
		return up.failure()
	}
	return p.relay(c, up)
}
