package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/oauth"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/oauthcore"
	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/xrpc"
)

// OAuth is another credential kind of the route table: besides its
// policy, every authenticated XRPC route declares here what an OAuth
// (DPoP-bound) token's scope must allow to call it, as the reference's
// handlers do with permissions.assert… . route() refuses to start with a
// route that declares nothing.

// oauthRule is what an OAuth caller's permissions must allow to call a
// route; nil from check means allowed.
type oauthRule struct {
	name  string
	check func(s *Server, c echo.Context, nsid string, p *oauthcore.Permissions) *xrpc.Error
}

var (
	// oauthNever: account management the reference keeps from OAuth
	// clients (passwords, app passwords, email changes, activation).
	oauthNever = oauthRule{"never", func(*Server, echo.Context, string, *oauthcore.Permissions) *xrpc.Error {
		return &xrpc.Error{Status: http.StatusForbidden, Name: "Forbidden", Message: "OAuth credentials are not supported for this endpoint"}
	}}
	// oauthAny: any token with the atproto scope (reads of the caller's own
	// account; getSession hides the email without account:email).
	oauthAny = oauthRule{"any", func(*Server, echo.Context, string, *oauthcore.Permissions) *xrpc.Error { return nil }}
	// oauthRepo: repo:<collection>?action=…, checked by the handler, which
	// knows the collections and actions of the body (api/repo).
	oauthRepo = oauthRule{"repo (in the handler)", func(*Server, echo.Context, string, *oauthcore.Permissions) *xrpc.Error { return nil }}
	// oauthBlob: blob:<mime type of the upload>.
	oauthBlob = oauthRule{"blob", func(_ *Server, c echo.Context, _ string, p *oauthcore.Permissions) *xrpc.Error {
		mime := c.Request().Header.Get("Content-Type")
		if mime == "" {
			mime = "application/octet-stream"
		}
		if !p.AllowsBlob(mime) {
			return xrpc.ScopeMissing("blob:" + strings.Split(mime, ";")[0])
		}
		return nil
	}}
	// oauthRPC: rpc:<method>?aud=<the service the call is for>: the
	// atproto-proxy header's, else the default service of the method.
	oauthRPC = oauthRule{"rpc", func(s *Server, c echo.Context, nsid string, p *oauthcore.Permissions) *xrpc.Error {
		aud := c.Request().Header.Get(proxy.HeaderProxy)
		if aud == "" && s.proxy != nil {
			aud = s.proxy.DefaultRef(nsid)
		}
		if !p.AllowsRPC(aud, nsid) {
			return xrpc.ScopeMissing(rpcScope(nsid, aud))
		}
		return nil
	}}
	// oauthServiceAuth: getServiceAuth's token is for rpc:<lxm>?aud=<aud>.
	oauthServiceAuth = oauthRule{"rpc (service auth)", func(_ *Server, c echo.Context, _ string, p *oauthcore.Permissions) *xrpc.Error {
		aud, lxm := c.QueryParam("aud"), c.QueryParam("lxm")
		if lxm == "" {
			lxm = "*"
		}
		if !p.AllowsRPC(aud, lxm) {
			return xrpc.ScopeMissing(rpcScope(lxm, aud))
		}
		return nil
	}}
)

func rpcScope(lxm, aud string) string {
	if aud == "" {
		aud = "*"
	}
	return fmt.Sprintf("rpc:%s?aud=%s", lxm, aud)
}

func oauthAccount(attr, action string) oauthRule {
	return oauthRule{"account:" + attr + "?action=" + action, func(_ *Server, _ echo.Context, _ string, p *oauthcore.Permissions) *xrpc.Error {
		if !p.AllowsAccount(attr, action) {
			return xrpc.ScopeMissing("account:" + attr + "?action=" + action)
		}
		return nil
	}}
}

func oauthIdentity(attr string) oauthRule {
	return oauthRule{"identity:" + attr, func(_ *Server, _ echo.Context, _ string, p *oauthcore.Permissions) *xrpc.Error {
		if !p.AllowsIdentity(attr) {
			return xrpc.ScopeMissing("identity:" + attr)
		}
		return nil
	}}
}

// oauthRules declares, by NSID, what an OAuth token must allow to call
// each authenticated route (the reference's authorize callbacks).
var oauthRules = map[string]oauthRule{
	"com.atproto.server.describeServer":           oauthAny,
	"com.atproto.server.createSession":            oauthAny,
	"com.atproto.server.reserveSigningKey":        oauthAny,
	"com.atproto.server.getSession":               oauthAny,
	"com.atproto.server.createAppPassword":        oauthNever,
	"com.atproto.server.listAppPasswords":         oauthNever,
	"com.atproto.server.revokeAppPassword":        oauthNever,
	"com.atproto.server.activateAccount":          oauthNever,
	"com.atproto.server.deactivateAccount":        oauthNever,
	"com.atproto.server.checkAccountStatus":       oauthAny,
	"com.atproto.server.getServiceAuth":           oauthServiceAuth,
	"com.atproto.server.requestEmailConfirmation": oauthAccount("email", "manage"),
	"com.atproto.server.confirmEmail":             oauthAccount("email", "manage"),
	"com.atproto.server.requestEmailUpdate":       oauthNever,
	"com.atproto.server.updateEmail":              oauthNever,
	"com.atproto.server.requestPasswordReset":     oauthAny,
	"com.atproto.server.resetPassword":            oauthAny,
	"com.atproto.server.requestAccountDelete":     oauthNever,
	"com.atproto.server.deleteAccount":            oauthAny,
	"com.atproto.server.getAccountInviteCodes":    oauthNever,
	"com.atproto.temp.checkSignupQueue":           oauthNever,

	"com.atproto.identity.resolveHandle":                oauthAny,
	"com.atproto.identity.updateHandle":                 oauthIdentity("handle"),
	"com.atproto.identity.getRecommendedDidCredentials": oauthAny,
	"com.atproto.identity.requestPlcOperationSignature": oauthIdentity("*"),
	"com.atproto.identity.signPlcOperation":             oauthIdentity("*"),
	"com.atproto.identity.submitPlcOperation":           oauthIdentity("*"),

	"com.atproto.repo.getRecord":        oauthAny,
	"com.atproto.repo.listRecords":      oauthAny,
	"com.atproto.repo.describeRepo":     oauthAny,
	"com.atproto.repo.createRecord":     oauthRepo,
	"com.atproto.repo.putRecord":        oauthRepo,
	"com.atproto.repo.deleteRecord":     oauthRepo,
	"com.atproto.repo.applyWrites":      oauthRepo,
	"com.atproto.repo.uploadBlob":       oauthBlob,
	"com.atproto.repo.listMissingBlobs": oauthAny,
	"com.atproto.repo.importRepo":       oauthAccount("repo", "manage"),

	"com.atproto.sync.getBlob":         oauthAny,
	"com.atproto.sync.listBlobs":       oauthAny,
	"com.atproto.sync.getRepo":         oauthAny,
	"com.atproto.sync.getBlocks":       oauthAny,
	"com.atproto.sync.getRecord":       oauthAny,
	"com.atproto.sync.getLatestCommit": oauthAny,
	"com.atproto.sync.getRepoStatus":   oauthAny,
	"com.atproto.sync.listRepos":       oauthAny,

	"app.bsky.actor.getPreferences": oauthRPC,
	"app.bsky.actor.putPreferences": oauthRPC,
	"app.bsky.actor.getProfile":     oauthRPC,
	"app.bsky.actor.getProfiles":    oauthRPC,
	"app.bsky.feed.getAuthorFeed":   oauthRPC,
	"app.bsky.feed.getTimeline":     oauthRPC,
	"app.bsky.feed.getPostThread":   oauthRPC,
	"app.bsky.feed.getActorLikes":   oauthRPC,
}

// oauthProxied is the rule of the methods the catch-all answers: the
// proxy checks rpc:<method>?aud=<service> once it has resolved the
// service (proxy.Handle); a method nothing serves answers 501 anyway.
var oauthProxied = oauthRule{"rpc (in the proxy)", func(*Server, echo.Context, string, *oauthcore.Permissions) *xrpc.Error { return nil }}

// oauthRule is the route's OAuth rule: the one oauthRules declares for an
// XRPC route that takes access tokens (it panics for one that declares
// none, so a new route cannot forget), none for the others.
func (r route) oauthRule() oauthRule {
	nsid, ok := strings.CutPrefix(r.path, "/xrpc/")
	if !ok || r.auth == none || r.auth == admin || r.auth == refresh || r.auth == serviceAuthOptional {
		return oauthRule{}
	}
	rule, ok := oauthRules[nsid]
	if !ok {
		panic("api: route " + nsid + " declares no OAuth rule (oauth_scopes.go)")
	}
	return rule
}

// newOAuth builds the OAuth server: its pages share createSession's login
// throttle; pushed requests (each an event) are limited per IP when rate
// limits are on.
func (s *Server) newOAuth() *oauth.Handlers {
	cfg := s.cfg.OAuth
	cfg.Throttle = s.server.Throttle
	cfg.Logger = s.cfg.Logger
	cfg.Registerer = s.metrics.Registry
	if s.cfg.RateLimits && cfg.PARLimiter == nil {
		cfg.PARLimiter = ratelimit.NewLimiter(ratelimit.DefaultMaxKeys, limitPAR)
	}
	return oauth.New(s.pds, cfg)
}

// limitPAR bounds pushed authorization requests per IP: each is an event
// in the log, pushed without an account.
var limitPAR = ratelimit.Limit{Points: 100, Window: 5 * time.Minute}

// oauthMaxBody bounds the OAuth endpoints' and pages' form posts.
const oauthMaxBody = 64 << 10

// oauthRoutes are the OAuth server's endpoints and pages: no XRPC
// credentials (the token endpoints authenticate the client, the pages the
// browser).
func (s *Server) oauthRoutes() []route {
	var out []route
	for _, r := range s.oauth.Routes() {
		rt := route{method: r.Method, path: r.Path, auth: none, h: r.Handler, global: true}
		if r.Method == http.MethodPost {
			// forms (the handlers also cap what they read)
			rt.body, rt.maxBody = jsonBody, oauthMaxBody
		}
		out = append(out, rt)
	}
	return out
}

// verifyOAuth verifies a DPoP-bound token for method nsid and applies the
// route's OAuth rule.
func (s *Server) verifyOAuth(c echo.Context, tok, nsid string, rule oauthRule) (*xrpc.Caller, error) {
	res, err := s.oauth.Authenticate(c, tok)
	if err != nil {
		return nil, err
	}
	a, err := s.pds.Accounts.Get(c.Request().Context(), res.DID)
	if err != nil {
		return nil, xrpc.AuthRequired("account not found")
	}
	if pds.TakenDown(a) {
		return nil, &xrpc.Error{Status: http.StatusUnauthorized, Name: "AccountTakedown", Message: "Account has been taken down"}
	}
	if rule.check == nil {
		return nil, &xrpc.Error{Status: http.StatusForbidden, Name: "Forbidden", Message: "OAuth credentials are not supported for this endpoint"}
	}
	if xe := rule.check(s, c, nsid, res.Permissions); xe != nil {
		return nil, xe
	}
	return &xrpc.Caller{DID: res.DID, Scope: string(auth.ScopeAppPassPrivileged), OAuth: res.Permissions, ClientID: res.ClientID}, nil
}
