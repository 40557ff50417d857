package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/xrpc"
)

// route is one entry of the route table: an HTTP method and path (for XRPC,
// /xrpc/NSID), the credential policy and the handler.
type route struct {
	method string
	path   string
	auth   policy
	h      echo.HandlerFunc
}

const (
	get  = http.MethodGet
	post = http.MethodPost
)

func x(method, nsid string, p policy, h echo.HandlerFunc) route {
	return route{method: method, path: "/xrpc/" + nsid, auth: p, h: h}
}

// routes is the route table: every endpoint the server answers, with its
// credential policy. A method's auth is declared here and nowhere else.
func (s *Server) routes() []route {
	sv, id, rp, bl, sy, ac := s.server, s.identity, s.repo, s.blob, s.sync, s.actor
	rs := []route{
		{method: get, path: "/xrpc/_health", auth: none, h: s.health},
		{method: get, path: "/ready", auth: none, h: s.ready},
		{method: get, path: "/metrics", auth: none, h: s.metricsHandler},
		{method: get, path: "/.well-known/atproto-did", auth: none, h: sv.AtprotoDID},
		{method: get, path: "/.well-known/did.json", auth: none, h: sv.DIDDocument},

		// com.atproto.server
		x(get, "com.atproto.server.describeServer", optional, sv.DescribeServer),
		x(post, "com.atproto.server.createAccount", serviceAuthOptional, sv.CreateAccount),
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

		// com.atproto.identity
		x(get, "com.atproto.identity.resolveHandle", optional, id.ResolveHandle),
		x(post, "com.atproto.identity.updateHandle", access, id.UpdateHandle),
		x(get, "com.atproto.identity.getRecommendedDidCredentials", access, id.GetRecommendedDidCredentials),
		x(post, "com.atproto.identity.requestPlcOperationSignature", access, id.RequestPLCOperationSignature),
		x(post, "com.atproto.identity.signPlcOperation", access, id.SignPLCOperation),
		x(post, "com.atproto.identity.submitPlcOperation", access, id.SubmitPLCOperation),

		// com.atproto.repo
		x(get, "com.atproto.repo.getRecord", optional, rp.GetRecord),
		x(get, "com.atproto.repo.listRecords", optional, rp.ListRecords),
		x(get, "com.atproto.repo.describeRepo", optional, rp.DescribeRepo),
		x(post, "com.atproto.repo.createRecord", access, rp.CreateRecord),
		x(post, "com.atproto.repo.putRecord", access, rp.PutRecord),
		x(post, "com.atproto.repo.deleteRecord", access, rp.DeleteRecord),
		x(post, "com.atproto.repo.applyWrites", access, rp.ApplyWrites),
		x(post, "com.atproto.repo.importRepo", access, rp.ImportRepo),
		x(post, "com.atproto.repo.uploadBlob", access, bl.UploadBlob),
		x(get, "com.atproto.repo.listMissingBlobs", access, bl.ListMissingBlobs),

		// com.atproto.sync: owners and the admin also read inactive repos
		x(get, "com.atproto.sync.getBlob", optionalOrAdmin, bl.GetBlob),
		x(get, "com.atproto.sync.listBlobs", optionalOrAdmin, bl.ListBlobs),
		x(get, "com.atproto.sync.getRepo", optionalOrAdmin, sy.GetRepo),
		x(get, "com.atproto.sync.getBlocks", optionalOrAdmin, sy.GetBlocks),
		x(get, "com.atproto.sync.getRecord", optionalOrAdmin, sy.GetRecord),
		x(get, "com.atproto.sync.getLatestCommit", optionalOrAdmin, sy.GetLatestCommit),
		x(get, "com.atproto.sync.getRepoStatus", optionalOrAdmin, sy.GetRepoStatus),
		x(get, "com.atproto.sync.listRepos", optionalOrAdmin, sy.ListRepos),
		x(get, "com.atproto.sync.subscribeRepos", none, s.firehose.SubscribeRepos),

		// app.bsky, served here in the AppView's place: preferences
		x(get, "app.bsky.actor.getPreferences", access, ac.GetPreferences),
		x(post, "app.bsky.actor.putPreferences", access, ac.PutPreferences),
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
	return rs
}

// route registers the route table, then the catch-all: every other XRPC
// method is proxied (atproto-proxy header or default routes) or 501, with
// an optional access token (the proxy signs for the caller).
func (s *Server) route() {
	for _, r := range s.routes() {
		var mw []echo.MiddlewareFunc
		if nsid := nsidOf(r.path); auth.IsProtectedMethod(nsid) {
			mw = append(mw, refuseProxied(nsid))
		}
		if r.auth != none {
			mw = append(mw, s.authenticate(r.auth, nsidOf(r.path)))
		}
		s.e.Add(r.method, r.path, r.h, mw...)
		if strings.HasPrefix(r.path, "/xrpc/") && !strings.HasPrefix(r.path, "/xrpc/_") {
			s.routeMethods(r)
		}
	}
	s.e.Any("/xrpc/:nsid", s.notImplemented, s.checkMethod, s.catchAllAuth)
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
		return s.authenticate(optional, nsid)(next)(c)
	}
}
