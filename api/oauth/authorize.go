package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/oauthcore"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/projections/accounts"
	oauthproj "github.com/pdslog/pdslog/projections/oauth"
)

// devHash is the device id as the log and projections know it.
func devHash(dev string) string { return oauthcore.Hash(dev) }

// authorizeURL is the authorize page of a request, for account (a DID,
// "new", or "").
func authorizeURL(clientID, requestURI, account string) string {
	q := url.Values{"client_id": {clientID}, "request_uri": {requestURI}}
	if account != "" {
		q.Set("account", account)
	}
	return "/oauth/authorize?" + q.Encode()
}

// redirectBack sends the browser to the client's redirect URI with params
// (a code, or an error), the state and the issuer (RFC 9207).
func (h *Handlers) redirectBack(c echo.Context, r *oauthproj.Request, params url.Values) error {
	params.Set("iss", h.issuer)
	if r.State != "" {
		params.Set("state", r.State)
	}
	u := r.RedirectURI
	if r.ResponseMode == "fragment" {
		u += "#" + params.Encode()
	} else {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + params.Encode()
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	return c.Redirect(http.StatusSeeOther, u)
}

// failAuthorization answers an error of an authorization in progress:
// back to the client when the request is known (access_denied and the
// like), else the error page.
func (h *Handlers) failAuthorization(c echo.Context, r *oauthproj.Request, err error) error {
	var oe *oauthcore.Error
	if !errors.As(err, &oe) {
		h.logger.Error("oauth: authorize failed", "err", err)
		return h.errorPage(c, http.StatusInternalServerError, "Something went wrong", "The server could not complete the request. Try again later.", "server_error")
	}
	h.metrics.refusals.WithLabelValues("authorize", oe.Code).Inc()
	if r == nil || oe.Description == "This request was already used" {
		msg := oe.Description
		if r != nil {
			msg = "This sign-in request was already answered. Go back to the app and start again if you need to."
		} else if errors.Is(err, pds.ErrUnknownRequest) {
			msg = "This sign-in request is unknown or too old. Go back to the app and start again."
		}
		return h.errorPage(c, oe.Status, "This sign-in link does not work", msg, oe.Code)
	}
	return h.redirectBack(c, r, url.Values{"error": {oe.Code}, "error_description": {oe.Description}})
}

// requestID is the request id of a request_uri.
func requestID(ru string) (string, bool) {
	id, ok := strings.CutPrefix(ru, oauthcore.RequestURIPrefix)
	return id, ok && strings.HasPrefix(id, oauthcore.PrefixRequest) && len(id) < 100
}

// deviceAccounts are the accounts signed in on device, with whether each
// may authorize without its password again.
func (h *Handlers) deviceAccounts(ctx context.Context, dev string) ([]accountView, map[string]*oauthproj.DeviceAccount, error) {
	das, err := h.PDS.OAuth.DeviceAccounts(ctx, devHash(dev))
	if err != nil {
		return nil, nil, err
	}
	var out []accountView
	byDID := map[string]*oauthproj.DeviceAccount{}
	for i := range das {
		da := &das[i]
		live := h.PDS.DeviceSignInLive(da)
		if !da.Remember && !live {
			continue // an ephemeral sign-in that ended is not listed
		}
		a, err := h.PDS.Accounts.Get(ctx, da.DID)
		if err != nil || a.Status == pds.StatusDeleted {
			continue
		}
		byDID[da.DID.String()] = da
		out = append(out, accountView{DID: a.DID.String(), Handle: a.Handle.String(), Email: a.Email, LoginNeed: !live})
	}
	return out, byDID, nil
}

// authorize serves GET /oauth/authorize: the sign-in, choose-account or
// consent page of a pushed request (or, when the client may skip them,
// the redirect back with a code).
func (h *Handlers) authorize(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.QueryParams()
	ru, clientID := q.Get("request_uri"), q.Get("client_id")
	id, ok := requestID(ru)
	if !ok || clientID == "" {
		return h.errorPage(c, http.StatusBadRequest, "This sign-in link does not work",
			"Apps must first push their request to this server (PAR) and send you here with its request_uri and client_id. Go back to the app and start again.", "invalid_request")
	}
	dev := h.ensureDevice(c)
	r, err := h.PDS.OpenAuthorizationRequest(ctx, id, clientID, devHash(dev))
	if err != nil {
		return h.failAuthorization(c, r, err)
	}
	client, err := h.clients.Resolve(ctx, r.ClientID)
	if err != nil {
		return h.failAuthorization(c, r, err)
	}
	accts, byDID, err := h.deviceAccounts(ctx, dev)
	if err != nil {
		return err
	}
	v := h.authorizeView(dev, r, client)
	target := redirectOrigin(r.RedirectURI)
	created, _ := time.Parse(time.RFC3339Nano, r.CreatedAt)
	// fresh: signed in on this device, with the password, since the
	// request (prompt=login asks for that).
	usable := func(did string) bool {
		da := byDID[did]
		if da == nil || !h.PDS.DeviceSignInLive(da) {
			return false
		}
		at, _ := time.Parse(time.RFC3339Nano, da.At)
		return r.Prompt != "login" || !at.Before(created)
	}
	choice := q.Get("account")
	if choice == "" && r.LoginHint != "" && r.Prompt != "select_account" {
		for _, a := range accts {
			if (a.DID == r.LoginHint || a.Handle == r.LoginHint) && usable(a.DID) {
				choice = a.DID
			}
		}
	}
	if r.Prompt == "none" {
		if choice == "" || !usable(choice) {
			return h.failAuthorization(c, r, &oauthcore.Error{Code: "login_required", Description: "The user must sign in", Status: http.StatusBadRequest})
		}
		if h.consentRequired(ctx, r, choice) {
			return h.failAuthorization(c, r, &oauthcore.Error{Code: "consent_required", Description: "The user must consent", Status: http.StatusBadRequest})
		}
		return h.approve(c, r, dev, choice)
	}
	switch {
	case choice != "" && choice != "new" && usable(choice):
		if !h.consentRequired(ctx, r, choice) {
			return h.approve(c, r, dev, choice)
		}
		a, err := h.PDS.Accounts.Get(ctx, syntax.DID(choice))
		if err != nil {
			return h.failAuthorization(c, r, oauthcore.AccessDenied("Unknown account"))
		}
		v.Title = "Authorize " + client.Name()
		v.Account = &accountView{DID: a.DID.String(), Handle: a.Handle.String(), Email: a.Email}
		v.Items = oauthcore.Describe(r.Scope)
		return h.render(c, http.StatusOK, "consent", v, target)
	case choice == "" && len(accts) > 0 && r.Prompt != "login":
		v.Title = "Choose an account"
		for _, a := range accts {
			a.URL = authorizeURL(r.ClientID, ru, a.DID)
			v.Accounts = append(v.Accounts, a)
		}
		v.AnotherURL = authorizeURL(r.ClientID, ru, "new")
		return h.render(c, http.StatusOK, "choose", v, target)
	}
	// Sign in: for the chosen account (its sign-in is too old), the hint,
	// or any.
	v.Title = "Sign in"
	if choice != "" && choice != "new" {
		if a, err := h.PDS.Accounts.Get(ctx, syntax.DID(choice)); err == nil {
			v.Identifier, v.HintLocked = a.Handle.String(), true
		}
	} else if choice == "" && r.LoginHint != "" {
		v.Identifier = r.LoginHint
		if strings.HasPrefix(r.LoginHint, "did:") {
			if a, err := h.PDS.Accounts.Get(ctx, syntax.DID(r.LoginHint)); err == nil {
				v.Identifier = a.Handle.String()
			}
		}
	}
	if len(accts) > 0 {
		v.AnotherURL = authorizeURL(r.ClientID, ru, "")
	}
	return h.render(c, http.StatusOK, "sign-in", v, target)
}

func (h *Handlers) authorizeView(dev string, r *oauthproj.Request, client *oauthcore.Client) *view {
	cv := &clientView{Name: client.Name(), Host: client.Host(), Logo: client.Logo(), Loopback: client.Loopback,
		TosURI: httpsURL(client.Metadata.TosURI), Policy: httpsURL(client.Metadata.PolicyURI)}
	if !client.Loopback {
		cv.URL = httpsURL(client.Metadata.ClientURI)
		if cv.URL == "" {
			if u, err := url.Parse(client.ID); err == nil {
				cv.URL = u.Scheme + "://" + u.Host
			}
		}
	}
	return &view{CSRF: h.csrfToken(dev), RequestURI: oauthcore.RequestURIPrefix + r.ID, ClientID: r.ClientID, Client: cv,
		SignInAction: "/oauth/authorize/sign-in", Remember: true}
}

func httpsURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme == "https" && u.Host != "" {
		return u.String()
	}
	return ""
}

// consentRequired: the client is public (always asks), asked for consent,
// or did not get every scope of this request from the account before.
func (h *Handlers) consentRequired(ctx context.Context, r *oauthproj.Request, did string) bool {
	if !r.Confidential || r.Prompt == "consent" {
		return true
	}
	ac, err := h.PDS.OAuth.AuthorizedClient(ctx, syntax.DID(did), r.ClientID)
	if err != nil {
		return true
	}
	for _, s := range strings.Fields(r.Scope) {
		if !slices.Contains(ac.Scopes, s) {
			return true
		}
	}
	return false
}

// approve issues the code for did and sends the browser back to the
// client.
func (h *Handlers) approve(c echo.Context, r *oauthproj.Request, dev, did string) error {
	ctx := c.Request().Context()
	a, err := h.PDS.Accounts.Get(ctx, syntax.DID(did))
	if err != nil {
		return h.failAuthorization(c, r, oauthcore.AccessDenied("Unknown account"))
	}
	code, r2, err := h.PDS.AuthorizeRequest(ctx, r.ID, devHash(dev), a, r.Scope)
	if err != nil {
		if r2 != nil {
			r = r2
		}
		return h.failAuthorization(c, r, err)
	}
	h.logger.Info("oauth: authorized", "client_id", r.ClientID, "did", did, "scope", r.Scope)
	return h.redirectBack(c, r, url.Values{"code": {code}})
}

// formRequest loads the request a page's form answers, bound to dev.
func (h *Handlers) formRequest(c echo.Context, dev string) (*oauthproj.Request, *oauthcore.Client, error) {
	f := c.Request().PostForm
	id, ok := requestID(f.Get("request_uri"))
	if !ok {
		return nil, nil, pds.ErrUnknownRequest
	}
	r, err := h.PDS.OAuth.Request(c.Request().Context(), id)
	if err != nil {
		return nil, nil, pds.ErrUnknownRequest
	}
	switch {
	case r.ClientID != f.Get("client_id"):
		return r, nil, oauthcore.AccessDenied("This request was initiated for another client")
	case r.Status() != oauthproj.RequestPending:
		return r, nil, oauthcore.AccessDenied("This request was already used")
	case r.Device != devHash(dev):
		return r, nil, oauthcore.AccessDenied("This request was initiated from another device")
	}
	client, err := h.clients.Resolve(c.Request().Context(), r.ClientID)
	return r, client, err
}

// authorizeSignIn serves the sign-in form of an authorization: then on to
// the consent page for the account.
func (h *Handlers) authorizeSignIn(c echo.Context) error {
	dev, ok, err := h.formGuard(c)
	if !ok {
		return err
	}
	r, client, err := h.formRequest(c, dev)
	if err != nil {
		return h.failAuthorization(c, r, err)
	}
	if c.Request().PostForm.Get("action") == "cancel" {
		return h.deny(c, r, dev)
	}
	res := h.signIn(c, dev)
	if res.did == "" {
		v := h.authorizeView(dev, r, client)
		res.fill(v)
		return h.render(c, res.status, "sign-in", v, redirectOrigin(r.RedirectURI))
	}
	return c.Redirect(http.StatusSeeOther, authorizeURL(r.ClientID, oauthcore.RequestURIPrefix+r.ID, res.did))
}

func (h *Handlers) deny(c echo.Context, r *oauthproj.Request, dev string) error {
	r2, err := h.PDS.DenyRequest(c.Request().Context(), r.ID, devHash(dev))
	if r2 != nil {
		r = r2
	}
	var oe *oauthcore.Error
	if errors.As(err, &oe) && oe.Code == "access_denied" {
		h.logger.Info("oauth: denied", "client_id", r.ClientID)
	}
	return h.failAuthorization(c, r, err)
}

// authorizeConsent serves the consent form: Authorize issues the code,
// Deny ends the request; either way back to the client.
func (h *Handlers) authorizeConsent(c echo.Context) error {
	dev, ok, err := h.formGuard(c)
	if !ok {
		return err
	}
	r, _, err := h.formRequest(c, dev)
	if err != nil {
		return h.failAuthorization(c, r, err)
	}
	f := c.Request().PostForm
	if f.Get("decision") != "allow" {
		return h.deny(c, r, dev)
	}
	did := f.Get("account")
	da, err := h.PDS.OAuth.DeviceAccount(c.Request().Context(), devHash(dev), syntax.DID(did))
	if err != nil || !h.PDS.DeviceSignInLive(da) {
		// The sign-in ended meanwhile: sign in again.
		return c.Redirect(http.StatusSeeOther, authorizeURL(r.ClientID, oauthcore.RequestURIPrefix+r.ID, did))
	}
	return h.approve(c, r, dev, did)
}

// signInResult is the outcome of a sign-in form.
type signInResult struct {
	did        string // set on success
	status     int
	msg        string
	identifier string
	remember   bool
	needCode   bool
	pending    string
	codeSentTo string
}

func (res *signInResult) fill(v *view) {
	v.Error, v.Identifier, v.Remember = res.msg, res.identifier, res.remember
	v.NeedCode, v.Pending, v.CodeSentTo = res.needCode, res.pending, res.codeSentTo
	if v.Title == "" {
		v.Title = "Sign in"
	}
}

// signIn checks a sign-in form (identifier and account password, or the
// email code of a sign-in waiting for it), throttled as createSession is
// (per identifier and IP, with a lockout), and records the sign-in on the
// device.
func (h *Handlers) signIn(c echo.Context, dev string) (res signInResult) {
	start := time.Now()
	defer func() {
		if d := ratelimit.LoginMinDuration - time.Since(start); d > 0 {
			time.Sleep(d)
		}
		outcome := "ok"
		switch {
		case res.needCode && res.msg == "":
			outcome = "code_sent"
		case res.did == "":
			outcome = "refused"
		}
		h.metrics.signIns.WithLabelValues(outcome).Inc()
	}()
	ctx := c.Request().Context()
	f := c.Request().PostForm
	now := h.PDS.Now()
	ip := c.RealIP()
	res = signInResult{status: http.StatusUnauthorized, identifier: strings.TrimSpace(f.Get("identifier")), remember: f.Get("remember") != ""}
	if tok := f.Get("pending"); tok != "" {
		return h.signInCode(c, dev, tok, strings.TrimSpace(f.Get("code")))
	}
	password := f.Get("password")
	if res.identifier == "" || password == "" {
		res.status, res.msg = http.StatusBadRequest, "Enter your handle or email address and your password."
		return res
	}
	if d := h.cfg.Throttle.Allow(res.identifier, ip, now); !d.OK {
		d.SetHeaders(c.Response().Header())
		res.status = http.StatusTooManyRequests
		res.msg = fmt.Sprintf("Too many sign-in attempts. Wait %s and try again.", roundUp(d.RetryAfter))
		return res
	}
	login, err := h.PDS.CheckPassword(ctx, res.identifier, password)
	if errors.Is(err, pds.ErrBadLogin) {
		h.cfg.Throttle.Fail(res.identifier, ip, now)
		res.msg = "Wrong handle, email address or password."
		return res
	}
	if errors.Is(err, pds.ErrPasswordBusy) { // the server-wide hashing gate is full
		h.cfg.Throttle.Release(res.identifier, ip, now)
		res.status, res.msg = http.StatusServiceUnavailable, "The server is busy. Try again in a moment."
		return res
	}
	if err != nil {
		h.cfg.Throttle.Release(res.identifier, ip, now)
		h.logger.Error("oauth: sign-in check failed", "err", err)
		res.status, res.msg = http.StatusInternalServerError, "The server could not check your password. Try again later."
		return res
	}
	if login.AppPassword != "" {
		h.cfg.Throttle.Release(res.identifier, ip, now)
		res.status, res.msg = http.StatusForbidden, "That is an app password. Sign in here with your account password: apps get their own access through this page."
		return res
	}
	a := login.Account
	if pds.TakenDown(a) {
		h.cfg.Throttle.Release(res.identifier, ip, now)
		res.status, res.msg = http.StatusForbidden, "This account has been taken down."
		return res
	}
	if a.EmailAuthFactor {
		err := h.PDS.CheckSignInCode(ctx, a, "")
		if !errors.Is(err, pds.ErrAuthFactorTokenRequired) {
			h.cfg.Throttle.Release(res.identifier, ip, now)
			res.status, res.msg = http.StatusServiceUnavailable, "The sign-in code could not be sent: "+errMessage(err)
			return res
		}
		h.cfg.Throttle.Release(res.identifier, ip, now)
		res.status, res.needCode = http.StatusOK, true
		res.pending = h.pending.put(&pendingSignIn{DID: a.DID.String(), Identifier: res.identifier, Device: dev, Remember: res.remember}, now)
		res.codeSentTo = maskEmail(a.Email)
		return res
	}
	h.cfg.Throttle.Succeed(res.identifier, ip, now)
	return h.signedIn(c, dev, a, res)
}

// signInCode checks the email code of a sign-in waiting for it.
func (h *Handlers) signInCode(c echo.Context, dev, tok, code string) signInResult {
	ctx := c.Request().Context()
	now := h.PDS.Now()
	ip := c.RealIP()
	p := h.pending.get(tok, dev, now)
	if p == nil {
		return signInResult{status: http.StatusUnauthorized, msg: "This sign-in took too long. Enter your password again."}
	}
	res := signInResult{status: http.StatusUnauthorized, identifier: p.Identifier, remember: p.Remember, needCode: true, pending: tok}
	a, err := h.PDS.Accounts.Get(ctx, syntax.DID(p.DID))
	if err != nil {
		h.pending.done(tok)
		return signInResult{status: http.StatusUnauthorized, msg: "This account no longer exists."}
	}
	res.codeSentTo = maskEmail(a.Email)
	if code == "" {
		res.status, res.msg = http.StatusBadRequest, "Enter the code from the email."
		return res
	}
	if d := h.cfg.Throttle.Allow(p.Identifier, ip, now); !d.OK {
		d.SetHeaders(c.Response().Header())
		res.status, res.msg = http.StatusTooManyRequests, fmt.Sprintf("Too many sign-in attempts. Wait %s and try again.", roundUp(d.RetryAfter))
		return res
	}
	if err := h.PDS.CheckSignInCode(ctx, a, code); err != nil {
		if errors.Is(err, pds.ErrInvalidToken) || errors.Is(err, pds.ErrExpiredToken) {
			h.cfg.Throttle.Fail(p.Identifier, ip, now)
			res.msg = "That code is wrong or has expired. Check the latest email, or start again to get a new code."
			return res
		}
		h.cfg.Throttle.Release(p.Identifier, ip, now)
		res.status, res.msg = http.StatusInternalServerError, "The code could not be checked: "+errMessage(err)
		return res
	}
	h.cfg.Throttle.Succeed(p.Identifier, ip, now)
	h.pending.done(tok)
	return h.signedIn(c, dev, a, res)
}

func (h *Handlers) signedIn(c echo.Context, dev string, a *accounts.Account, res signInResult) signInResult {
	ua := c.Request().UserAgent()
	if err := h.PDS.DeviceSignIn(c.Request().Context(), a.DID, devHash(dev), res.remember, ua, c.RealIP()); err != nil {
		h.logger.Error("oauth: recording sign-in", "err", err)
		res.status, res.msg = http.StatusInternalServerError, "The server could not sign you in. Try again later."
		return res
	}
	h.logger.Info("oauth: signed in", "did", a.DID, "remember", res.remember)
	res.did = a.DID.String()
	return res
}

func errMessage(err error) string {
	var pe *pds.Error
	if errors.As(err, &pe) {
		return pe.Msg
	}
	return "the server could not do it right now."
}

func roundUp(d time.Duration) string {
	if d <= time.Minute {
		return fmt.Sprintf("%d seconds", max(int(d.Seconds()+0.999), 1))
	}
	return fmt.Sprintf("%d minutes", int(d.Minutes()+0.999))
}

// maskEmail shows enough of an address to recognise it.
func maskEmail(e string) string {
	user, domain, ok := strings.Cut(e, "@")
	if !ok || user == "" {
		return "your email address"
	}
	return user[:1] + strings.Repeat("•", min(len(user)-1, 6)) + "@" + domain
}
