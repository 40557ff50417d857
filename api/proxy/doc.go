// Package proxy forwards the XRPC calls this PDS does not answer itself to
// the services that do (the XRPC spec's "Service Proxying"; the reference
// PDS's pipethrough.ts), and answers a few AppView methods with
// read-after-write.
//
// Routing (route.go): an atproto-proxy header "DID#service_id" names the
// service; its DID document is resolved (resolve.go: did:plc through the
// PLC directory, did:web over HTTPS, cached 1 h fresh / 24 h stale as the
// reference's DID cache) and the entry with that id gives the URL. Without
// the header, app.bsky.* goes to the configured AppView, tools.ozone.* to
// the moderation service and com.atproto.moderation.createReport to the
// report service; anything else is 501 MethodNotImplemented.
//
// Auth (service_auth.go): every forwarded call carries a fresh
// inter-service JWT signed with the caller's repo key (iss the account,
// aud the service DID, or DID#service_id with ServiceAuthCombinedAud, lxm
// the method, exp one minute, a random jti). Protected methods (account
// and credential management) are never forwarded; privileged ones
// (chat.bsky.*, createAccount) need a full session or a privileged app
// password.
//
// Forwarding (forward.go): method, query, body and the reference's
// request headers go out; status, content headers, atproto-repo-rev,
// atproto-content-labelers and retry-after come back, the body streamed
// as it arrives, with the reference's limits (headers 10 s, 30 s between
// body pieces, 10 MiB). Outbound connections go through an SSRF guard
// (ssrf.go) that refuses non-https URLs and non-public addresses unless
// it is disabled (PDS_DISABLE_SSRF_PROTECTION, dev mode).
//
// Read-after-write (read_after_write.go, local_viewer.go, one file per
// method): for getProfile(s), getAuthorFeed, getTimeline, getPostThread
// and getActorLikes, when the AppView's atproto-repo-rev is older than the
// requester's newest commits, the requester's records written since are
// merged into the answer.
package proxy
