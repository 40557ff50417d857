package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/actor"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/repo"
	"github.com/pdslog/pdslog/api/xrpc"
)

// route is one entry of the route table: an HTTP method and path (for XRPC,
// /xrpc/NSID), the credential policy, the handler, and what one client may
// make it do: its body class and limit, and its per-address rate limits.
type route struct {
	method string
	path   string
	auth   policy
	h      echo.HandlerFunc
	// body is the route's body class; maxBody the largest declared
	// Content-Length a jsonBody route accepts (what its handler reads).
	body    bodyClass
	maxBody int64
	// global: the request counts against the global per-address limit
	// (every XRPC method but those exempt, as in the reference).
	global bool
	// perIP is the route's own per-address limit, if any.
	perIP ipLimit
}

const (
	get  = http.MethodGet
	post = http.MethodPost
)

// x is an XRPC method's route: under the global per-address limit, and a
// procedure takes a small JSON body.
func x(method, nsid string, p policy, h echo.HandlerFunc) route {
	r := route{method: method, path: "/xrpc/" + nsid, auth: p, h: h, global: true}
	if method == post {
		r.body, r.maxBody = jsonBody, smallJSON
	}
	return r
}

// plain is a route outside XRPC's limits (health, well-known documents).
func plain(method, path string, h echo.HandlerFunc) route {
	return route{method: method, path: path, auth: none, h: h}
}

// maxJSON sets a procedure's body limit to its handler's.
func (r route) maxJSON(n int64) route { r.maxBody = n; return r }

// upload makes the route's body a blob upload.
func (r route) upload() route { r.body = blobBody; return r }

// importCAR makes the route's body a repo CAR (importRepo).
func (r route) importCAR() route { r.body = carBody; return r }

// limit adds a per-address limit of the route's own.
func (r route) limit(l ipLimit) route { r.perIP = l; return r }

// exempt takes the route out of the global per-address limit.
func (r route) exempt() route { r.global = false; return r }

// routes is the route table: every endpoint the server answers, with its
// credential policy and limits. A method's auth and limits are declared
// here and nowhere else.
func (s *Server) routes() []route {
	sv, id, rp, bl, sy, ac := s.server, s.identity, s.repo, s.blob, s.sync, s.actor
	rs := []route{
		plain(get, "/xrpc/_health", s.health),
		plain(get, "/ready", s.ready),
		plain(get, "/.well-known/atproto-did", sv.AtprotoDID),
		plain(get, "/.well-known/did.json", sv.DIDDocument),

		// com.atproto.server
		x(get, "com.atproto.server.describeServer", optional, sv.DescribeServer),
		x(post, "com.atproto.server.createAccount", serviceAuthOptional, sv.CreateAccount).limit(ipLimit{s.limits.createAccount, RefusedRateCreateAccount}),
		x(post, "com.atproto.server.reserveSigningKey", optional, sv.ReserveSigningKey),
		x(post, "com.atproto.server.createSession", optional, sv.CreateSession),
		x(get, "com.atproto.server.getSession", access, sv.GetSession),
		x(post, "com.atproto.server.refreshSession", refresh, sv.RefreshSession),
		x(post, "com.atproto.server.deleteSession", refresh, sv.DeleteSession),
		x(post, "com.atproto.server.createAppPassword", access, sv.CreateAppPassword),
		x(get, "com.atproto.server.listAppPasswords", access, sv.ListAppPasswords),
		x(post, "com.atproto.server.revokeAppPassword", access, sv.RevokeAppPassword),
		x(post, "com.atproto.server.activateAccount", access, sv.ActivateAccount),
		x(post, "com.atproto.server.deactivateAccount", access, sv.DeactivateAccount),
		x(get, "com.atproto.server.checkAccountStatus", access, sv.CheckAccountStatus),
		x(get, "com.atproto.server.getServiceAuth", access, sv.GetServiceAuth),
		x(post, "com.atproto.server.requestEmailConfirmation", access, sv.RequestEmailConfirmation),
		x(post, "com.atproto.server.confirmEmail", access, sv.ConfirmEmail),
		x(post, "com.atproto.server.requestEmailUpdate", access, sv.RequestEmailUpdate),
		x(post, "com.atproto.server.updateEmail", access, sv.UpdateEmail),
		x(post, "com.atproto.server.requestPasswordReset", optional, sv.RequestPasswordReset),
		x(post, "com.atproto.server.resetPassword", optional, sv.ResetPassword),
		x(post, "com.atproto.server.requestAccountDelete", access, sv.RequestAccountDelete),
		x(post, "com.atproto.server.deleteAccount", optional, sv.DeleteAccount),
		x(post, "com.atproto.server.createInviteCode", admin, sv.CreateInviteCode),
		x(post, "com.atproto.server.createInviteCodes", admin, sv.CreateInviteCodes),
		x(get, "com.atproto.server.getAccountInviteCodes", access, sv.GetAccountInviteCodes),
		x(get, "com.atproto.temp.checkSignupQueue", access, sv.CheckSignupQueue),

		// com.atproto.admin
		x(post, "com.atproto.admin.deleteAccount", admin, sv.AdminDeleteAccount),
		x(post, "com.atproto.admin.updateSubjectStatus", admin, sv.UpdateSubjectStatus),
		x(get, "com.atproto.admin.getSubjectStatus", admin, sv.GetSubjectStatus),
		x(post, "com.atproto.admin.sendEmail", admin, sv.AdminSendEmail),
		x(get, "com.atproto.admin.getAccountInfo", admin, sv.GetAccountInfo),
		x(get, "com.atproto.admin.getAccountInfos", admin, sv.GetAccountInfos),
		x(get, "com.atproto.admin.getInviteCodes", admin, sv.GetInviteCodes),
		x(post, "com.atproto.admin.disableAccountInvites", admin, sv.DisableAccountInvites),
		x(post, "com.atproto.admin.enableAccountInvites", admin, sv.EnableAccountInvites),
		x(post, "com.atproto.admin.disableInviteCodes", admin, sv.DisableInviteCodes),
		x(post, "com.atproto.admin.updateAccountHandle", admin, sv.UpdateAccountHandle),
		x(post, "com.atproto.admin.updateAccountEmail", admin, sv.UpdateAccountEmail),
		x(post, "com.atproto.admin.updateAccountPassword", admin, sv.UpdateAccountPassword),

		// com.atproto.identity (an inactive account's handle resolves for
		// its owner and the admin only, as its repo reads below)
		x(get, "com.atproto.identity.resolveHandle", optionalOrAdmin, id.ResolveHandle),
		x(post, "com.atproto.identity.updateHandle", access, id.UpdateHandle),
		x(get, "com.atproto.identity.getRecommendedDidCredentials", access, id.GetRecommendedDidCredentials),
		x(post, "com.atproto.identity.requestPlcOperationSignature", access, id.RequestPLCOperationSignature),
		x(post, "com.atproto.identity.signPlcOperation", access, id.SignPLCOperation),
		x(post, "com.atproto.identity.submitPlcOperation", access, id.SubmitPLCOperation),

		// com.atproto.repo: owners and the admin also read inactive repos
		x(get, "com.atproto.repo.getRecord", optionalOrAdmin, rp.GetRecord),
		x(get, "com.atproto.repo.listRecords", optionalOrAdmin, rp.ListRecords),
		x(get, "com.atproto.repo.describeRepo", optionalOrAdmin, rp.DescribeRepo),
		x(post, "com.atproto.repo.createRecord", access, rp.CreateRecord).maxJSON(repo.MaxRecordBody),
		x(post, "com.atproto.repo.putRecord", access, rp.PutRecord).maxJSON(repo.MaxRecordBody),
		x(post, "com.atproto.repo.deleteRecord", access, rp.DeleteRecord),
		x(post, "com.atproto.repo.applyWrites", access, rp.ApplyWrites).maxJSON(repo.MaxRecordBody),
		x(post, "com.atproto.repo.importRepo", access, rp.ImportRepo).importCAR(),
		x(post, "com.atproto.repo.uploadBlob", access, bl.UploadBlob).upload(),
		x(get, "com.atproto.repo.listMissingBlobs", access, bl.ListMissingBlobs),

		// com.atproto.sync: owners and the admin also read inactive repos
		x(get, "com.atproto.sync.getBlob", optionalOrAdmin, bl.GetBlob),
		x(get, "com.atproto.sync.listBlobs", optionalOrAdmin, bl.ListBlobs),
		x(get, "com.atproto.sync.getRepo", optionalOrAdmin, sy.GetRepo).exempt(),
		x(get, "com.atproto.sync.getBlocks", optionalOrAdmin, sy.GetBlocks),
		x(get, "com.atproto.sync.getRecord", optionalOrAdmin, sy.GetRecord),
		x(get, "com.atproto.sync.getLatestCommit", optionalOrAdmin, sy.GetLatestCommit),
		x(get, "com.atproto.sync.getRepoStatus", optionalOrAdmin, sy.GetRepoStatus),
		x(get, "com.atproto.sync.listRepos", optionalOrAdmin, sy.ListRepos),
		x(get, "com.atproto.sync.subscribeRepos", none, s.firehose.SubscribeRepos).exempt(),

		// app.bsky, served here in the AppView's place: preferences
		x(get, "app.bsky.actor.getPreferences", access, ac.GetPreferences),
		x(post, "app.bsky.actor.putPreferences", access, ac.PutPreferences).maxJSON(actor.MaxPutBody),
	}
	if p := s.proxy; p != nil {
		// read-after-write over the AppView's answers
		rs = append(rs,
			x(get, "app.bsky.actor.getProfile", optional, p.GetProfile),
			x(get, "app.bsky.actor.getProfiles", optional, p.GetProfiles),
			x(get, "app.bsky.feed.getAuthorFeed", optional, p.GetAuthorFeed),
			x(get, "app.bsky.feed.getTimeline", optional, p.GetTimeline),
			x(get, "app.bsky.feed.getPostThread", optional, p.GetPostThread),
			x(get, "app.bsky.feed.getActorLikes", optional, p.GetActorLikes),
		)
	}
	return append(rs, s.oauthRoutes()...)
}

// route registers the route table, then the catch-all: every other XRPC
// method is proxied (atproto-proxy header or default routes) or 501, with
// an optional access token (the proxy signs for the caller).
func (s *Server) route() {
	for _, r := range s.routes() {
		s.e.Add(r.method, r.path, r.h, s.middleware(r)...)
		if strings.HasPrefix(r.path, "/xrpc/") && !strings.HasPrefix(r.path, "/xrpc/_") {
			s.routeMethods(r)
		}
	}
	catchAll := x(post, ":nsid", none, nil).maxJSON(maxProxiedBody)
	s.e.Any("/xrpc/:nsid", s.notImplemented, append(s.middleware(catchAll), s.checkMethod, s.catchAllAuth)...)
}

// middleware is what r declares, in order: its per-address limits, its
// body's limit and deadline, the refusal to proxy a protected method, its
// credential policy.
func (s *Server) middleware(r route) []echo.MiddlewareFunc {
	var mw []echo.MiddlewareFunc
	if rl := s.rateLimit(r); rl != nil {
		mw = append(mw, rl)
	}
	mw = append(mw, s.limitBody(r.body, r.maxBody))
	if nsid := nsidOf(r.path); auth.IsProtectedMethod(nsid) {
		mw = append(mw, refuseProxied(nsid))
	}
	if r.auth != none {
		mw = append(mw, s.authenticate(r.auth, nsidOf(r.path), r.oauthRule()))
	}
	return mw
}

// refuseProxied refuses a call of protected method nsid (account and
// credential management) that asks to be proxied with an atproto-proxy
// header, as the reference does: such methods are only ever served by the
// account's own PDS.
func refuseProxied(nsid string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().Header.Get(proxy.HeaderProxy) != "" {
				return &xrpc.Error{Status: http.StatusBadRequest, Name: "InvalidToken",
					Message: "Bad token method: " + nsid + " is account management: call it on the PDS, it is never proxied"}
			}
			return next(c)
		}
	}
}

// catchAllAuth is the optional policy for whatever method the catch-all
// answers.
func (s *Server) catchAllAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		nsid := c.Param("nsid")
		if strings.HasPrefix(nsid, "_") {
			return next(c)
		}
		return s.authenticate(optional, nsid, oauthProxied)(next)(c)
	}
}
