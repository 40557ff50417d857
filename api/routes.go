package api

import "github.com/pdslog/pdslog/api/server"

// routes is the route table: every endpoint the server answers.
func (s *Server) routes() {
	e := s.e
	e.GET("/xrpc/_health", s.health)
	e.GET("/ready", s.ready)
	e.GET("/metrics", s.metricsHandler)

	e.GET("/.well-known/atproto-did", s.server.AtprotoDID)
	e.GET("/.well-known/did.json", s.server.DIDDocument)

	// com.atproto.server
	e.GET("/xrpc/com.atproto.server.describeServer", s.server.DescribeServer)
	if su := s.opts.Signup; su != nil {
		e.POST("/xrpc/com.atproto.server.createAccount", su.CreateAccount)
		e.POST("/xrpc/com.atproto.identity.updateHandle", su.UpdateHandle)
		e.GET("/xrpc/com.atproto.identity.getRecommendedDidCredentials", su.GetRecommendedDidCredentials)
	}
	if ss := s.opts.Sessions; ss != nil {
		admin := &server.Admin{Password: s.opts.AdminPassword, Sessions: ss, Hostname: s.opts.Service.Hostname, ServiceDID: s.opts.Service.DID(),
			Blobs: s.opts.BlobIndex}
		if s.blob != nil {
			admin.DeleteBlobs = s.blob.DeleteAccountBlobs
		}
		e.POST("/xrpc/com.atproto.admin.deleteAccount", admin.DeleteAccount)
		e.POST("/xrpc/com.atproto.admin.updateSubjectStatus", admin.UpdateSubjectStatus)
		e.GET("/xrpc/com.atproto.admin.getSubjectStatus", admin.GetSubjectStatus)
		e.POST("/xrpc/com.atproto.server.createInviteCode", admin.CreateInviteCode)
		e.POST("/xrpc/com.atproto.server.createInviteCodes", admin.CreateInviteCodes)
		e.POST("/xrpc/com.atproto.server.createSession", ss.CreateSession)
		e.GET("/xrpc/com.atproto.server.getSession", ss.GetSession)
		e.POST("/xrpc/com.atproto.server.refreshSession", ss.RefreshSession)
		e.POST("/xrpc/com.atproto.server.deleteSession", ss.DeleteSession)
		e.POST("/xrpc/com.atproto.server.createAppPassword", ss.CreateAppPassword)
		e.POST("/xrpc/com.atproto.server.deactivateAccount", ss.DeactivateAccount)
		e.GET("/xrpc/com.atproto.server.getServiceAuth", ss.GetServiceAuth)
		e.GET("/xrpc/com.atproto.server.checkAccountStatus", ss.CheckAccountStatus)
		e.POST("/xrpc/com.atproto.server.activateAccount", ss.ActivateAccount)
		e.GET("/xrpc/com.atproto.server.listAppPasswords", ss.ListAppPasswords)
		e.POST("/xrpc/com.atproto.server.revokeAppPassword", ss.RevokeAppPassword)
	}

	// com.atproto.identity
	e.GET("/xrpc/com.atproto.identity.resolveHandle", s.identity.ResolveHandle)

	// com.atproto.repo
	e.GET("/xrpc/com.atproto.repo.getRecord", s.repo.GetRecord)
	e.GET("/xrpc/com.atproto.repo.listRecords", s.repo.ListRecords)
	e.GET("/xrpc/com.atproto.repo.describeRepo", s.repo.DescribeRepo)
	e.POST("/xrpc/com.atproto.repo.createRecord", s.repo.CreateRecord)
	e.POST("/xrpc/com.atproto.repo.putRecord", s.repo.PutRecord)
	e.POST("/xrpc/com.atproto.repo.deleteRecord", s.repo.DeleteRecord)
	e.POST("/xrpc/com.atproto.repo.applyWrites", s.repo.ApplyWrites)

	// blobs
	if b := s.blob; b != nil {
		e.POST("/xrpc/com.atproto.repo.uploadBlob", b.UploadBlob)
		e.GET("/xrpc/com.atproto.repo.listMissingBlobs", b.ListMissingBlobs)
		e.GET("/xrpc/com.atproto.sync.getBlob", b.GetBlob)
		e.GET("/xrpc/com.atproto.sync.listBlobs", b.ListBlobs)
	}

	// com.atproto.sync.subscribeRepos (websocket)
	if f := s.firehose; f != nil {
		e.GET("/xrpc/com.atproto.sync.subscribeRepos", f.SubscribeRepos)
	}

	// app.bsky, served here in the AppView's place: preferences, and
	// read-after-write over the AppView's answers
	e.GET("/xrpc/app.bsky.actor.getPreferences", s.actor.GetPreferences)
	e.POST("/xrpc/app.bsky.actor.putPreferences", s.actor.PutPreferences)
	if p := s.proxy; p != nil {
		e.GET("/xrpc/app.bsky.actor.getProfile", p.GetProfile)
		e.GET("/xrpc/app.bsky.actor.getProfiles", p.GetProfiles)
		e.GET("/xrpc/app.bsky.feed.getAuthorFeed", p.GetAuthorFeed)
		e.GET("/xrpc/app.bsky.feed.getTimeline", p.GetTimeline)
		e.GET("/xrpc/app.bsky.feed.getPostThread", p.GetPostThread)
		e.GET("/xrpc/app.bsky.feed.getActorLikes", p.GetActorLikes)
	}

	// everything else: proxied (atproto-proxy, default routes) or 501
	// com.atproto.sync reads
	if h := s.sync; h != nil {
		e.GET("/xrpc/com.atproto.sync.getRepo", h.GetRepo)
		e.GET("/xrpc/com.atproto.sync.getBlocks", h.GetBlocks)
		e.GET("/xrpc/com.atproto.sync.getRecord", h.GetRecord)
		e.GET("/xrpc/com.atproto.sync.getLatestCommit", h.GetLatestCommit)
		e.GET("/xrpc/com.atproto.sync.getRepoStatus", h.GetRepoStatus)
		e.GET("/xrpc/com.atproto.sync.listRepos", h.ListRepos)
	}

	e.Any("/xrpc/:nsid", s.notImplemented)
}
