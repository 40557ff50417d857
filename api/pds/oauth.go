package pds

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/oauthcore"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/accounts"
	oauthproj "github.com/pdslog/pdslog/projections/oauth"
)

// The OAuth authorization server's write side: every change of an
// authorization request, code, device sign-in or OAuth session is an
// oauth.* event (eventlog/events/oauth.go), projected by projections/oauth.
// Errors meant for the client are *oauthcore.Error.

// oauthState is the OAuth write side's in-process state.
type oauthState struct {
	signer *oauthcore.Signer
	locks  sync.Map // request id -> *sync.Mutex
}

func (p *PDS) openOAuth() {
	p.oauth.signer = oauthcore.NewSigner(p.OAuthIssuer(), p.Service.DID().String(), p.Tokens.DeriveKey("oauth access token v1"))
}

// OAuthIssuer is the authorization server's issuer: the PDS's public URL
// without a trailing slash.
func (p *PDS) OAuthIssuer() string { return strings.TrimSuffix(p.Service.PublicURL(), "/") }

// OAuthSigner signs and verifies the OAuth access tokens.
func (p *PDS) OAuthSigner() *oauthcore.Signer { return p.oauth.signer }

func (p *PDS) lockRequest(id string) func() {
	m, _ := p.oauth.locks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return func() {
		mu.Unlock()
		p.oauth.locks.Delete(id)
	}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseRFC3339(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// PushAuthorizationRequest records a validated pushed authorization
// request (its ID, CreatedAt and ExpiresAt are set here) and returns it.
func (p *PDS) PushAuthorizationRequest(ctx context.Context, r events.OAuthRequest) (*oauthproj.Request, error) {
	now := p.Now()
	r.ID = oauthcore.NewID(oauthcore.PrefixRequest)
	r.CreatedAt, r.ExpiresAt = rfc3339(now), rfc3339(now.Add(oauthcore.RequestLifetime))
	ev, err := events.New(p.Service.DID(), &r)
	if err != nil {
		return nil, err
	}
	if _, err := p.commit(ctx, ev); err != nil {
		return nil, err
	}
	return p.OAuth.Request(ctx, r.ID)
}

// ErrUnknownRequest is the error of a request_uri the server does not know
// (never issued, or dropped long after it expired).
var ErrUnknownRequest = oauthcore.InvalidRequest("Unknown request_uri")

// endRequest ends a pending request and returns e.
func (p *PDS) endRequest(ctx context.Context, r *oauthproj.Request, e *oauthcore.Error) error {
	if r.Status() == oauthproj.RequestPending {
		ev := events.Must(p.Service.DID(), &events.OAuthRequestEnded{ID: r.ID, Reason: e.Code + ": " + e.Description})
		if _, err := p.commit(ctx, ev); err != nil {
			return err
		}
	}
	return e
}

// OpenAuthorizationRequest is a device's visit to /oauth/authorize with
// request id of client clientID: the first visit binds the request to the
// device (for InactivityTimeout more); a request of another client or
// device, expired or already answered, is refused (and ended:
// access_denied, which the page sends back to the client).
func (p *PDS) OpenAuthorizationRequest(ctx context.Context, id, clientID, device string) (*oauthproj.Request, error) {
	unlock := p.lockRequest(id)
	defer unlock()
	r, err := p.OAuth.Request(ctx, id)
	if errors.Is(err, oauthproj.ErrNotFound) {
		return nil, ErrUnknownRequest
	}
	if err != nil {
		return nil, err
	}
	now := p.Now()
	switch {
	case r.ClientID != clientID:
		return r, p.endRequest(ctx, r, oauthcore.AccessDenied("This request was initiated for another client"))
	case r.Status() != oauthproj.RequestPending:
		return r, oauthcore.AccessDenied("This request was already used")
	case !now.Before(parseRFC3339(r.Expires)):
		return r, p.endRequest(ctx, r, oauthcore.AccessDenied("This request has expired"))
	case r.Device != "" && r.Device != device:
		return r, p.endRequest(ctx, r, oauthcore.AccessDenied("This request was initiated from another device"))
	case r.Device == device:
		return r, nil
	}
	ev := events.Must(p.Service.DID(), &events.OAuthRequestBound{ID: id, Device: device, ExpiresAt: rfc3339(now.Add(oauthcore.InactivityTimeout))})
	if _, err := p.commit(ctx, ev); err != nil {
		return nil, err
	}
	return p.OAuth.Request(ctx, id)
}

// pendingRequest loads request id for an answer from device.
func (p *PDS) pendingRequest(ctx context.Context, id, device string) (*oauthproj.Request, error) {
	r, err := p.OAuth.Request(ctx, id)
	if errors.Is(err, oauthproj.ErrNotFound) {
		return nil, ErrUnknownRequest
	}
	if err != nil {
		return nil, err
	}
	switch {
	case r.Status() != oauthproj.RequestPending:
		return r, oauthcore.AccessDenied("This request was already used")
	case r.Device == "":
		return r, oauthcore.AccessDenied("This request was not initiated")
	case r.Device != device:
		return r, oauthcore.AccessDenied("This request was initiated from another device")
	case !p.Now().Before(parseRFC3339(r.Expires)):
		return r, p.endRequest(ctx, r, oauthcore.AccessDenied("This request has expired"))
	}
	return r, nil
}

// AuthorizeRequest records account a's consent to request id, from the
// device it is bound to, granting scope (the requested scope): it returns
// the authorization code, usable once within InactivityTimeout.
func (p *PDS) AuthorizeRequest(ctx context.Context, id, device string, a *accounts.Account, scope string) (string, *oauthproj.Request, error) {
	unlock := p.lockRequest(id)
	defer unlock()
	r, err := p.pendingRequest(ctx, id, device)
	if err != nil {
		return "", r, err
	}
	if !a.Active || a.Status != "" {
		return "", r, p.endRequest(ctx, r, oauthcore.AccessDenied("This account is not active (%s)", a.Status))
	}
	code := oauthcore.NewID(oauthcore.PrefixCode)
	ev := events.Must(a.DID, &events.OAuthCode{RequestID: id, CodeHash: oauthcore.Hash(code), ClientID: r.ClientID, Scope: scope,
		Device: device, ExpiresAt: rfc3339(p.Now().Add(oauthcore.InactivityTimeout))})
	if _, err := p.commit(ctx, ev); err != nil {
		return "", r, err
	}
	r, err = p.OAuth.Request(ctx, id)
	return code, r, err
}

// DenyRequest ends request id, answered "no" (or abandoned) on device.
func (p *PDS) DenyRequest(ctx context.Context, id, device string) (*oauthproj.Request, error) {
	unlock := p.lockRequest(id)
	defer unlock()
	r, err := p.pendingRequest(ctx, id, device)
	if err != nil {
		return r, err
	}
	return r, p.endRequest(ctx, r, oauthcore.AccessDenied("Access denied"))
}

// TokenRequest is an authenticated request to /oauth/token.
type TokenRequest struct {
	Client *oauthcore.Client
	Auth   *oauthcore.ClientAuth
	Proof  *oauthcore.Proof
	// authorization_code
	Code, RedirectURI, CodeVerifier string
	// refresh_token
	RefreshToken string
}

// TokenResponse is /oauth/token's answer.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	ExpiresIn    int64  `json:"expires_in"`
	Sub          string `json:"sub"`
}

// sameClient checks that a later request of a session comes from the
// client, key and DPoP key the session started with.
func sameClient(tr TokenRequest, clientID string, auth events.OAuthClientAuth, jkt string) error {
	if clientID != tr.Client.ID {
		return oauthcore.InvalidGrant("Token was not issued to this client")
	}
	if auth.Method != tr.Auth.Method {
		return oauthcore.InvalidGrant("Client authentication method mismatch (expected %s, got %s)", auth.Method, tr.Auth.Method)
	}
	if auth.Method == "private_key_jwt" && (auth.KeyID != tr.Auth.KeyID || auth.JKT != tr.Auth.JKT) {
		return oauthcore.InvalidGrant("The session was initiated with a different key than the client assertion currently used")
	}
	if jkt != "" && tr.Proof.JKT != jkt {
		return oauthcore.InvalidGrant("DPoP proof does not match the expected JKT")
	}
	return nil
}

// ExchangeCode is the authorization_code grant: the code (once), its
// client, redirect URI, PKCE verifier and DPoP key checked, it opens an
// OAuth session. A code presented again revokes the session it opened.
func (p *PDS) ExchangeCode(ctx context.Context, tr TokenRequest) (*TokenResponse, error) {
	hash := oauthcore.Hash(tr.Code)
	r, err := p.OAuth.RequestByCode(ctx, hash)
	if errors.Is(err, oauthproj.ErrNotFound) {
		if s, err := p.OAuth.SessionByCode(ctx, hash); err == nil {
			return nil, p.replayed(ctx, s, "authorization code replayed")
		}
		return nil, oauthcore.InvalidGrant("Invalid code")
	}
	if err != nil {
		return nil, err
	}
	g := r.Grant
	unlock := p.Lock(g.DID)
	defer unlock()
	unlockReq := p.lockRequest(r.ID)
	defer unlockReq()
	if r, err = p.OAuth.Request(ctx, r.ID); err != nil || r.Grant == nil {
		return nil, oauthcore.InvalidGrant("Invalid code")
	}
	g = r.Grant
	switch r.Status() {
	case oauthproj.RequestExchanged:
		if s, err := p.OAuth.Session(ctx, g.DID, g.SessionID); err == nil {
			return nil, p.replayed(ctx, s, "authorization code replayed")
		}
		return nil, oauthcore.InvalidGrant("Code already used")
	case oauthproj.RequestEnded:
		return nil, oauthcore.InvalidGrant("Code already used")
	}
	now := p.Now()
	// From here on the code is spent, whatever the outcome (as the
	// reference consumes it before checking the rest).
	burn := func(e *oauthcore.Error) error {
		ev := events.Must(p.Service.DID(), &events.OAuthRequestEnded{ID: r.ID, Reason: "code exchange refused: " + e.Description})
		if _, err := p.commit(ctx, ev); err != nil {
			return err
		}
		return e
	}
	if !now.Before(parseRFC3339(g.ExpiresAt)) {
		return nil, burn(oauthcore.InvalidGrant("This code has expired"))
	}
	if err := sameClient(tr, r.ClientID, r.ClientAuth, r.DPoPJKT); err != nil {
		return nil, burn(err.(*oauthcore.Error))
	}
	if tr.RedirectURI != r.RedirectURI {
		return nil, burn(oauthcore.InvalidGrant("The redirect_uri parameter must match the one used in the authorization request"))
	}
	if err := oauthcore.CheckPKCE(r.CodeChallenge, tr.CodeVerifier); err != nil {
		return nil, burn(err.(*oauthcore.Error))
	}
	a, err := p.Accounts.Get(ctx, g.DID)
	if err != nil || !a.Active {
		return nil, burn(oauthcore.InvalidGrant("The account is not active"))
	}
	sessLife := tr.Client.SessionLifetime()
	refreshLife := tr.Client.RefreshLifetime()
	refresh := oauthcore.NewID(oauthcore.PrefixRefresh)
	s := events.OAuthSession{ID: oauthcore.NewID(oauthcore.PrefixSession), ClientID: tr.Client.ID,
		ClientAuth:   events.OAuthClientAuth{Method: tr.Auth.Method, KeyID: tr.Auth.KeyID, JKT: tr.Auth.JKT},
		Confidential: tr.Client.Confidential(), Scope: g.Scope, DPoPJKT: tr.Proof.JKT, CodeHash: hash,
		RefreshHash: oauthcore.Hash(refresh), TokenID: oauthcore.NewID(oauthcore.PrefixToken), Device: g.Device,
		CreatedAt: rfc3339(now), ExpiresAt: rfc3339(minTime(now.Add(refreshLife), now.Add(sessLife))),
		SessionExpiresAt: rfc3339(now.Add(sessLife))}
	resp, err := p.accessToken(g.DID, &s, now, refresh)
	if err != nil {
		return nil, err
	}
	if _, err := p.commit(ctx, events.Must(g.DID, &s)); err != nil {
		return nil, err
	}
	return resp, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// accessToken signs the access token of session s at now (it lives
// AccessTokenLifetime, never past the session's end) and builds the
// response.
func (p *PDS) accessToken(did syntax.DID, s *events.OAuthSession, now time.Time, refresh string) (*TokenResponse, error) {
	exp := minTime(now.Add(oauthcore.AccessTokenLifetime), parseRFC3339(s.SessionExpiresAt))
	if exp.Sub(now) < time.Second {
		return nil, oauthcore.InvalidGrant("Session expired")
	}
	c := oauthcore.AccessClaims{Subject: did.String(), ClientID: s.ClientID, Scope: s.Scope, JTI: s.TokenID, SessionID: s.ID,
		IssuedAt: now.Unix(), ExpiresAt: exp.Unix()}
	c.Cnf.JKT = s.DPoPJKT
	tok, err := p.oauth.signer.Sign(c)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: tok, TokenType: "DPoP", RefreshToken: refresh, Scope: s.Scope,
		ExpiresIn: exp.Unix() - now.Unix(), Sub: did.String()}, nil
}

// replayed revokes s, whose code or refresh token was presented again (a
// sign it was stolen), and returns the client's error.
func (p *PDS) replayed(ctx context.Context, s *oauthproj.Session, why string) error {
	if err := p.RevokeOAuthSession(ctx, s.DID, s.ID, why); err != nil {
		return err
	}
	p.Logger().Warn("oauth: session revoked", "did", s.DID, "client_id", s.ClientID, "reason", why)
	return oauthcore.InvalidGrant("%s: the session is revoked", capitalize(why))
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// RefreshOAuth is the refresh_token grant: the refresh token is single
// use and rotated; presenting a rotated one again revokes the session, and
// so does any other failure with the current one (as the reference).
func (p *PDS) RefreshOAuth(ctx context.Context, tr TokenRequest) (*TokenResponse, error) {
	hash := oauthcore.Hash(tr.RefreshToken)
	s, err := p.OAuth.SessionByRefresh(ctx, hash)
	if errors.Is(err, oauthproj.ErrNotFound) {
		return nil, oauthcore.InvalidGrant("Invalid refresh token")
	}
	if err != nil {
		return nil, err
	}
	unlock := p.Lock(s.DID)
	defer unlock()
	if s, err = p.OAuth.SessionByRefresh(ctx, hash); err != nil {
		return nil, oauthcore.InvalidGrant("Invalid refresh token")
	}
	if s.RefreshHash != hash {
		return nil, p.replayed(ctx, s, "refresh token replayed")
	}
	fail := func(e *oauthcore.Error) error {
		if err := p.RevokeOAuthSession(ctx, s.DID, s.ID, "refresh refused: "+e.Description); err != nil {
			return err
		}
		return e
	}
	if err := sameClient(tr, s.ClientID, s.ClientAuth, s.DPoPJKT); err != nil {
		return nil, fail(err.(*oauthcore.Error))
	}
	if !slicesContains(tr.Client.Metadata.GrantTypes, "refresh_token") {
		return nil, fail(oauthcore.InvalidGrant("Refresh token grant not allowed"))
	}
	now := p.Now()
	if !now.Before(parseRFC3339(s.SessionExpiresAt)) {
		return nil, fail(oauthcore.InvalidGrant("Session expired"))
	}
	if !now.Before(parseRFC3339(s.ExpiresAt)) {
		return nil, fail(oauthcore.InvalidGrant("Refresh token expired"))
	}
	a, err := p.Accounts.Get(ctx, s.DID)
	if err != nil || !a.Active {
		return nil, fail(oauthcore.InvalidGrant("The account is not active"))
	}
	refresh := oauthcore.NewID(oauthcore.PrefixRefresh)
	next := s.OAuthSession
	next.RefreshHash, next.TokenID = oauthcore.Hash(refresh), oauthcore.NewID(oauthcore.PrefixToken)
	next.ExpiresAt = rfc3339(minTime(now.Add(tr.Client.RefreshLifetime()), parseRFC3339(s.SessionExpiresAt)))
	resp, err := p.accessToken(s.DID, &next, now, refresh)
	if err != nil {
		return nil, fail(err.(*oauthcore.Error))
	}
	ev := events.Must(s.DID, &events.OAuthRefreshed{ID: s.ID, RefreshHash: next.RefreshHash, TokenID: next.TokenID, At: rfc3339(now), ExpiresAt: next.ExpiresAt})
	if _, err := p.commit(ctx, ev); err != nil {
		return nil, err
	}
	return resp, nil
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// RevokeOAuthToken is /oauth/revoke (RFC 7009): the session of an access
// or refresh token of client clientID ends. Unknown tokens are not an
// error.
func (p *PDS) RevokeOAuthToken(ctx context.Context, token, clientID string) error {
	var s *oauthproj.Session
	if strings.HasPrefix(token, oauthcore.PrefixRefresh) {
		s, _ = p.OAuth.SessionByRefresh(ctx, oauthcore.Hash(token))
	} else if c, err := p.oauth.signer.Verify(token, time.Unix(0, 0)); err == nil {
		s, _ = p.OAuth.Session(ctx, syntax.DID(c.Subject), c.SessionID)
	}
	if s == nil {
		return nil
	}
	if s.ClientID != clientID {
		return oauthcore.InvalidGrant("Token was not issued to this client")
	}
	return p.RevokeOAuthSession(ctx, s.DID, s.ID, "revoked by the client")
}

// RevokeOAuthSession ends did's OAuth session id ("" ends all of them).
func (p *PDS) RevokeOAuthSession(ctx context.Context, did syntax.DID, id, reason string) error {
	_, err := p.commit(ctx, events.Must(did, &events.OAuthRevoked{ID: id, Reason: reason}))
	return err
}

// VerifyOAuthAccess verifies an OAuth access token for a resource server
// request: signature, expiry, and that its session is live and the token
// is the session's current one (a refresh retires the previous access
// token; a revocation all of them). The caller checks the DPoP proof's
// key against Cnf.JKT. Errors are *oauthcore.Error (invalid_token), or
// ErrAccountTakendown for a token its account's takedown revoked.
func (p *PDS) VerifyOAuthAccess(ctx context.Context, token string) (*oauthcore.AccessClaims, *oauthproj.Session, error) {
	now := p.Now()
	c, err := p.oauth.signer.Verify(token, now)
	if err != nil {
		return nil, nil, err
	}
	s, err := p.OAuth.Session(ctx, syntax.DID(c.Subject), c.SessionID)
	if errors.Is(err, oauthproj.ErrNotFound) {
		// A takedown revokes every session; its tokens then say why, as a
		// legacy access token of the account does (AccountTakedown).
		if a, aerr := p.Accounts.Get(ctx, syntax.DID(c.Subject)); aerr == nil && TakenDown(a) {
			return nil, nil, &Error{Kind: ErrAccountTakendown, Msg: "Account has been taken down"}
		}
		return nil, nil, oauthcore.InvalidToken("Token has been revoked")
	}
	if err != nil {
		return nil, nil, err
	}
	switch {
	case s.TokenID != c.JTI:
		return nil, nil, oauthcore.InvalidToken("Token was replaced by a refresh")
	case s.ClientID != c.ClientID || s.DPoPJKT != c.Cnf.JKT:
		return nil, nil, oauthcore.InvalidToken("Invalid token")
	case !now.Before(parseRFC3339(s.SessionExpiresAt)):
		return nil, nil, oauthcore.InvalidToken("Session expired")
	}
	return c, s, nil
}

// DeviceSignIn records account did's sign-in on device (the SHA-256 of
// the device cookie), remembered or not.
func (p *PDS) DeviceSignIn(ctx context.Context, did syntax.DID, device string, remember bool, userAgent, ip string) error {
	if len(userAgent) > 256 {
		userAgent = userAgent[:256]
	}
	ev := events.Must(did, &events.OAuthDeviceSignIn{Device: device, Remember: remember, At: rfc3339(p.Now()), UserAgent: userAgent, IP: ip})
	_, err := p.commit(ctx, ev)
	return err
}

// DeviceSignOut signs did out of device ("" for every device).
func (p *PDS) DeviceSignOut(ctx context.Context, did syntax.DID, device string) error {
	_, err := p.commit(ctx, events.Must(did, &events.OAuthDeviceSignOut{Device: device}))
	return err
}

// DeviceSignInLive reports whether a sign-in still lets its account act
// on the device without the password: a remembered one for
// AuthenticationMaxAge, another for EphemeralSessionMaxAge.
func (p *PDS) DeviceSignInLive(da *oauthproj.DeviceAccount) bool {
	age := oauthcore.EphemeralSessionMaxAge
	if da.Remember {
		age = oauthcore.AuthenticationMaxAge
	}
	return p.Now().Before(parseRFC3339(da.At).Add(age))
}
