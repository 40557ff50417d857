package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/oauth/oauthtest"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/mail"
	"github.com/pdslog/pdslog/api/pds/mail/mailtest"
	"github.com/pdslog/pdslog/eventlog/events"
	oauthproj "github.com/pdslog/pdslog/projections/oauth"
)

// rawClient speaks to the authorization server by hand, with its own DPoP
// key and the server's nonce, to send what a well-behaved client would
// not.
type rawClient struct {
	t     *testing.T
	e     *env
	key   *atcrypto.PrivateKeyP256
	nonce string
}

func newRaw(t *testing.T, e *env) *rawClient {
	k, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, e: e, key: k}
}

type answer struct {
	status int
	body   map[string]any
	header http.Header
}

func (a answer) err() string  { s, _ := a.body["error"].(string); return s }
func (a answer) desc() string { s, _ := a.body["error_description"].(string); return s }

// post sends form to path with a proof from proof (nil: a fresh valid
// one), retrying once on use_dpop_nonce unless noRetry.
func (r *rawClient) post(path string, form url.Values, proof func(nonce string) string, noRetry bool) answer {
	r.t.Helper()
	for i := 0; ; i++ {
		p := ""
		if proof != nil {
			p = proof(r.nonce)
		} else {
			p = proofFor(r.t, r.key, "POST", issuer+path, r.nonce, "", "")
		}
		req, _ := http.NewRequest("POST", issuer+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if p != "" {
			req.Header.Set("DPoP", p)
		}
		resp, err := r.e.w.Client().Do(req)
		if err != nil {
			r.t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		a := answer{status: resp.StatusCode, body: body, header: resp.Header}
		if n := resp.Header.Get("DPoP-Nonce"); n != "" {
			r.nonce = n
		}
		if a.err() == "use_dpop_nonce" && !noRetry && i == 0 {
			continue
		}
		return a
	}
}

// challenge is an S256 PKCE pair.
func challenge() (verifier, challenge string) {
	verifier = strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func parForm(app *oauthtest.App) url.Values {
	_, ch := challenge()
	return url.Values{"client_id": {app.ClientID}, "response_type": {"code"}, "redirect_uri": {app.Callback},
		"scope": {strings.Join(app.Scopes, " ")}, "state": {"st"}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}
}

// TestPARRefusals: each request the atproto profile forbids is refused
// with the spec's error, and nothing is written to the log.
func TestPARRefusals(t *testing.T) {
	e := newEnv(t)
	app := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{Scopes: []string{"atproto", "transition:generic", "repo:app.bsky.feed.post"}})
	r := newRaw(t, e)
	cases := []struct {
		name      string
		change    func(url.Values)
		err, desc string
	}{
		{"no PKCE", func(f url.Values) { f.Del("code_challenge"); f.Del("code_challenge_method") }, "invalid_request", "PKCE is required"},
		{"plain PKCE", func(f url.Values) {
			f.Set("code_challenge", strings.Repeat("p", 50))
			f.Set("code_challenge_method", "plain")
		}, "invalid_request", `"S256"`},
		{"PKCE without method", func(f url.Values) { f.Del("code_challenge_method") }, "invalid_request", `"S256"`},
		{"redirect URI not in the metadata", func(f url.Values) { f.Set("redirect_uri", "https://app.example.com/elsewhere") }, "invalid_request", "redirect_uri"},
		{"redirect URI on another host", func(f url.Values) { f.Set("redirect_uri", "https://evil.example.org/callback") }, "invalid_request", "redirect_uri"},
		{"no atproto scope", func(f url.Values) { f.Set("scope", "transition:generic") }, "invalid_scope", "atproto"},
		{"scope not declared", func(f url.Values) { f.Set("scope", "atproto transition:email") }, "invalid_scope", "not declared"},
		{"permission set", func(f url.Values) { f.Set("scope", "atproto include:app.bsky.authFull") }, "invalid_scope", "not supported"},
		{"malformed permission", func(f url.Values) { f.Set("scope", "atproto repo:not an nsid") }, "invalid_scope", ""},
		{"token response type", func(f url.Values) { f.Set("response_type", "token") }, "invalid_request", "response_type"},
		{"prompt none from a public client", func(f url.Values) { f.Set("prompt", "none") }, "invalid_request", "silent"},
		{"bad login hint", func(f url.Values) { f.Set("login_hint", "not a handle") }, "invalid_request", "login_hint"},
		{"JAR", func(f url.Values) { f.Set("request", "x.y.z") }, "invalid_request", "request"},
		{"unknown client", func(f url.Values) { f.Set("client_id", "https://nowhere.example.com/client.json") }, "invalid_client_metadata", ""},
		{"client id on an IP", func(f url.Values) { f.Set("client_id", "https://127.0.0.1/client.json") }, "invalid_client_metadata", "IP"},
		{"client_assertion from a public client", func(f url.Values) {
			f.Set("client_assertion", "x")
			f.Set("client_assertion_type", oauth.ClientAssertionJWTBearer)
		}, "invalid_client", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			head := e.Log.Head()
			f := parForm(app)
			c.change(f)
			a := r.post("/oauth/par", f, nil, false)
			if a.status/100 != 4 || a.err() != c.err || !strings.Contains(a.desc(), c.desc) {
				t.Fatalf("got %d %v, want %s (%q)", a.status, a.body, c.err, c.desc)
			}
			if _, ok := a.body["request_uri"]; ok || e.Log.Head() != head {
				t.Fatalf("a refused request was recorded (%v, head %d -> %d)", a.body, head, e.Log.Head())
			}
		})
	}
	// The same request, well formed, is accepted: the refusals above are
	// each for the change made.
	if a := r.post("/oauth/par", parForm(app), nil, false); a.status != http.StatusCreated || !strings.HasPrefix(a.body["request_uri"].(string), "urn:ietf:params:oauth:request_uri:req-") {
		t.Fatalf("good PAR: %d %v", a.status, a.body)
	}
	// No DPoP proof at all: refused.
	if a := r.post("/oauth/par", parForm(app), func(string) string { return "" }, true); a.status != 400 || a.err() != "invalid_dpop_proof" {
		t.Fatalf("PAR without DPoP: %d %v", a.status, a.body)
	}
}

// TestClientMetadataRefused: a metadata document over the size cap, or
// on a private address (the SSRF guard, at dial time), is refused.
func TestClientMetadataRefused(t *testing.T) {
	t.Run("size cap", func(t *testing.T) {
		e := newEnv(t)
		app := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{})
		app.SetMetadata("padding", strings.Repeat("x", 70<<10))
		a := newRaw(t, e).post("/oauth/par", parForm(app), nil, false)
		if a.status != 400 || a.err() != "invalid_client_metadata" || !strings.Contains(a.desc(), "limit") {
			t.Fatalf("oversized metadata: %d %v", a.status, a.body)
		}
	})
	t.Run("private address", func(t *testing.T) {
		var w *oauthtest.World
		e := newEnv(t, func(c *api.Config) {})
		w = e.w
		// The server's own guard, with the world's names resolving to
		// their loopback listeners.
		e2 := apitest.NewPDS(t, func(o *pds.Options) { o.Service.Hostname = oauthtest.PDSHost },
			func(c *api.Config) { c.OAuth.ClientHTTP = &http.Client{Transport: w.GuardedTransport()} })
		w.Serve(t, oauthtest.PDSHost, e2.API.Handler())
		app := oauthtest.NewApp(t, w, oauthtest.AppOptions{})
		a := newRaw(t, &env{Env: e2, w: w}).post("/oauth/par", parForm(app), nil, false)
		if a.status != 400 || a.err() != "invalid_client_metadata" || !strings.Contains(a.desc(), "forbidden") {
			t.Fatalf("metadata on a private address: %d %v", a.status, a.body)
		}
	})
}

// flowToCallback pushes a request and drives the pages to the redirect
// back: the callback's query and the app's stored request info.
func flowToCallback(t *testing.T, e *env, app *oauthtest.App, a *apitest.Account) (url.Values, *oauth.AuthRequestData) {
	t.Helper()
	ctx := context.Background()
	redirect, err := app.OAuth.StartAuthFlow(ctx, a.DID.String())
	if err != nil {
		t.Fatal(err)
	}
	cb := oauthtest.Callback(oauthtest.NewBrowser(t, e.w).SignInAndConsent(redirect, a.Handle.String(), a.Password))
	info, err := app.OAuth.Store.GetAuthRequestInfo(ctx, cb.Get("state"))
	if err != nil {
		t.Fatal(err)
	}
	return cb, info
}

// TestCodeReuse: a code is exchanged once; presented again it is refused
// and the session it opened is revoked.
func TestCodeReuse(t *testing.T) {
	e := newEnv(t)
	app := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{})
	a := e.account(app)
	cb, info := flowToCallback(t, e, app, a)
	if cb.Get("iss") != issuer || cb.Get("code") == "" {
		t.Fatalf("callback: %v", cb)
	}
	ctx := context.Background()
	data, err := app.OAuth.ProcessCallback(ctx, cb)
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := app.OAuth.ResumeSession(ctx, data.AccountDID, data.SessionID)
	if _, err := post(sess, "first"); err != nil {
		t.Fatal(err)
	}
	_, err = app.OAuth.SendInitialTokenRequest(ctx, cb.Get("code"), *info)
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("reused code: %v, want invalid_grant", err)
	}
	if st := rawCall(t, e, sess, sess.Data.AccessToken, "GET", "com.atproto.server.getSession"); st.status != 401 || st.error != "invalid_token" {
		t.Fatalf("session of a reused code: %+v", st)
	}
	if ss, _ := e.PDS.OAuth.Sessions(ctx, a.DID); len(ss) != 0 {
		t.Fatalf("sessions left: %+v", ss)
	}
}

// TestRefreshReuse: a rotated refresh token presented again is refused
// and revokes the session (its newest tokens too).
func TestRefreshReuse(t *testing.T) {
	e := newEnv(t)
	app := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{})
	a := e.account(app)
	sess := login(t, e, app, a)
	old := sess.Data.RefreshToken
	if _, err := sess.RefreshTokens(context.Background()); err != nil {
		t.Fatal(err)
	}
	current := sess.Data.AccessToken
	sess.Data.RefreshToken = old
	_, err := sess.RefreshTokens(context.Background())
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("reused refresh token: %v, want invalid_grant", err)
	}
	if st := rawCall(t, e, sess, current, "GET", "com.atproto.server.getSession"); st.status != 401 || st.error != "invalid_token" {
		t.Fatalf("newest token after a replayed refresh: %+v", st)
	}
}

// TestDPoPRefusals: at the token endpoint and at the resource server, a
// replayed proof jti, a wrong htu, a stale nonce, a proof of another key,
// and a DPoP-bound token sent as Bearer are each refused with the spec's
// error.
func TestDPoPRefusals(t *testing.T) {
	e := newEnv(t)
	app := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{})
	a := e.account(app)
	sess := login(t, e, app, a)
	key := sess.DPoPPrivateKey
	tok := sess.Data.AccessToken
	getSession := issuer + "/xrpc/com.atproto.server.getSession"
	// A good call first: the refusals below are each for what changed.
	st := rawCall(t, e, sess, tok, "GET", "com.atproto.server.getSession")
	if st.status != 200 {
		t.Fatalf("good call: %+v", st)
	}
	nonce := st.nonce

	// Resource server.
	replayed := proofFor(t, key, "GET", getSession, nonce, tok, "same-jti")
	if st := send(t, e, "GET", getSession, "DPoP "+tok, replayed, nil); st.status != 200 {
		t.Fatalf("first use of a proof: %+v", st)
	}
	if st := send(t, e, "GET", getSession, "DPoP "+tok, replayed, nil); st.status != 401 || st.error != "invalid_dpop_proof" || !strings.Contains(st.body, "replayed") {
		t.Fatalf("replayed proof: %+v", st)
	}
	wrongHTU := proofFor(t, key, "GET", issuer+"/xrpc/com.atproto.server.describeServer", nonce, tok, "")
	if st := send(t, e, "GET", getSession, "DPoP "+tok, wrongHTU, nil); st.status != 401 || st.error != "invalid_dpop_proof" || !strings.Contains(st.body, "htu") {
		t.Fatalf("wrong htu: %+v", st)
	}
	stale := proofFor(t, key, "GET", getSession, "c3RhbGUtbm9uY2U", tok, "")
	st = send(t, e, "GET", getSession, "DPoP "+tok, stale, nil)
	if st.status != 401 || st.error != "use_dpop_nonce" || !strings.Contains(st.wwwAuth, `DPoP error="use_dpop_nonce"`) || st.nonce == "" {
		t.Fatalf("stale nonce: %+v", st)
	}
	noNonce := proofFor(t, key, "GET", getSession, "", tok, "")
	if st := send(t, e, "GET", getSession, "DPoP "+tok, noNonce, nil); st.status != 401 || st.error != "use_dpop_nonce" {
		t.Fatalf("no nonce: %+v", st)
	}
	other, _ := atcrypto.GeneratePrivateKeyP256()
	if st := send(t, e, "GET", getSession, "DPoP "+tok, proofFor(t, other, "GET", getSession, nonce, tok, ""), nil); st.status != 401 || st.error != "invalid_token" {
		t.Fatalf("proof of another key: %+v", st)
	}
	noATH := proofFor(t, key, "GET", getSession, nonce, "", "")
	if st := send(t, e, "GET", getSession, "DPoP "+tok, noATH, nil); st.status != 401 || st.error != "invalid_dpop_proof" {
		t.Fatalf("proof without ath: %+v", st)
	}
	if st := send(t, e, "GET", getSession, "DPoP "+tok, "", nil); st.status != 401 || st.error != "invalid_dpop_proof" {
		t.Fatalf("no proof: %+v", st)
	}
	if st := send(t, e, "GET", getSession, "Bearer "+tok, "", nil); st.status != 401 || st.error != "invalid_token" || !strings.Contains(st.body, "bound to a DPoP proof") {
		t.Fatalf("DPoP-bound token as Bearer: %+v", st)
	}

	// Token endpoint (a refresh): the same refusals, as 400s.
	r := &rawClient{t: t, e: e, key: key.(*atcrypto.PrivateKeyP256), nonce: sess.Data.DPoPAuthServerNonce}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {sess.Data.RefreshToken}, "client_id": {app.ClientID}}
	tokenURL := issuer + "/oauth/token"
	a1 := r.post("/oauth/token", form, func(n string) string { return proofFor(t, key, "POST", issuer+"/oauth/par", n, "", "") }, false)
	if a1.status != 400 || a1.err() != "invalid_dpop_proof" {
		t.Fatalf("token request with a wrong htu: %d %v", a1.status, a1.body)
	}
	a2 := r.post("/oauth/token", form, func(string) string { return proofFor(t, key, "POST", tokenURL, "c3RhbGU", "", "") }, true)
	if a2.status != 400 || a2.err() != "use_dpop_nonce" || a2.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("token request with a stale nonce: %d %v", a2.status, a2.body)
	}
	fixed := proofFor(t, key, "POST", tokenURL, r.nonce, "", "token-jti")
	a3 := r.post("/oauth/token", form, func(string) string { return fixed }, true)
	if a3.status != 200 {
		t.Fatalf("refresh: %d %v", a3.status, a3.body)
	}
	form.Set("refresh_token", a3.body["refresh_token"].(string))
	a4 := r.post("/oauth/token", form, func(string) string { return fixed }, true)
	if a4.status != 400 || a4.err() != "invalid_dpop_proof" || !strings.Contains(a4.desc(), "replayed") {
		t.Fatalf("token request with a replayed proof: %d %v", a4.status, a4.body)
	}
	// ... which issued nothing: the refresh token is still good.
	if a5 := r.post("/oauth/token", form, nil, false); a5.status != 200 {
		t.Fatalf("refresh after the refusals: %d %v", a5.status, a5.body)
	}
}

// TestPagesRefusals: a form without its CSRF token, or posted from
// another site, changes nothing; a denied consent goes back to the client
// as access_denied with no code, and the request is over.
func TestPagesRefusals(t *testing.T) {
	e := newEnv(t)
	app := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{})
	a := e.account(app)
	ctx := context.Background()
	redirect, err := app.OAuth.StartAuthFlow(ctx, a.DID.String())
	if err != nil {
		t.Fatal(err)
	}
	b := oauthtest.NewBrowser(t, e.w)
	p := b.Get(redirect)
	if p.Status != 200 || !strings.Contains(p.Body, `value="`+a.Handle.String()+`"`) {
		t.Fatalf("sign-in page (login_hint prefilled): %d %s", p.Status, p.Body)
	}
	csp := p.Header.Get("Content-Security-Policy")
	for _, d := range []string{"frame-ancestors 'none'", "default-src 'none'", "form-action 'self' https://app.example.com"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	f := p.Form(t, "/oauth/authorize/sign-in")
	creds := map[string]string{"identifier": a.Handle.String(), "password": a.Password, "csrf": ""}
	if r := b.Submit(p, f, "action=sign-in", creds); r.Status != http.StatusForbidden || !strings.Contains(r.Body, "security token") {
		t.Fatalf("sign-in without CSRF token: %d %s", r.Status, r.Body)
	}
	b.Origin = "https://evil.example.org"
	delete(creds, "csrf")
	if r := b.Submit(p, f, "action=sign-in", creds); r.Status != http.StatusForbidden {
		t.Fatalf("sign-in from another site: %d %s", r.Status, r.Body)
	}
	b.Origin = issuer
	if das, _ := e.PDS.OAuth.AccountDevices(ctx, a.DID); len(das) != 0 {
		t.Fatalf("a refused sign-in was recorded: %+v", das)
	}
	r := b.Submit(p, f, "action=sign-in", creds)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	consent := b.Follow(r)
	cf := consent.Form(t, "/oauth/authorize/consent")
	if r := b.Submit(consent, cf, "decision=allow", map[string]string{"csrf": "forged"}); r.Status != http.StatusForbidden {
		t.Fatalf("consent with a forged CSRF token: %d %s", r.Status, r.Body)
	}
	id := strings.TrimPrefix(cf.Fields.Get("request_uri"), "urn:ietf:params:oauth:request_uri:")
	if req, _ := e.PDS.OAuth.Request(ctx, id); req.Status() != oauthproj.RequestPending {
		t.Fatalf("request after a forged consent: %s", req.Status())
	}
	// Deny.
	r = b.Submit(consent, cf, "decision=deny", nil)
	u, _ := url.Parse(r.Location)
	q := u.Query()
	if r.Status != http.StatusSeeOther || q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("state") == "" || q.Get("iss") != issuer {
		t.Fatalf("denied consent: %d %s", r.Status, r.Location)
	}
	var cbErr *oauth.AuthRequestCallbackError
	if _, err := app.OAuth.ProcessCallback(ctx, q); !errors.As(err, &cbErr) || cbErr.ErrorCode != "access_denied" {
		t.Fatalf("indigo's view of the denial: %v", err)
	}
	if req, _ := e.PDS.OAuth.Request(ctx, id); req.Status() != oauthproj.RequestEnded {
		t.Fatalf("request after denial: %s", req.Status())
	}
	if r := b.Submit(consent, cf, "decision=allow", nil); r.Status == http.StatusSeeOther && strings.Contains(r.Location, "code=") {
		t.Fatalf("a denied request was authorized afterwards: %s", r.Location)
	}
	if ss, _ := e.PDS.OAuth.Sessions(ctx, a.DID); len(ss) != 0 {
		t.Fatalf("sessions: %+v", ss)
	}
}

// TestSignInThrottle: the sign-in page locks an identifier out after five
// wrong passwords from an address, as createSession does (one throttle).
func TestSignInThrottle(t *testing.T) {
	e := newEnv(t)
	app := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{})
	a := e.account(app)
	redirect, err := app.OAuth.StartAuthFlow(context.Background(), a.DID.String())
	if err != nil {
		t.Fatal(err)
	}
	b := oauthtest.NewBrowser(t, e.w)
	p := b.Get(redirect)
	f := p.Form(t, "/oauth/authorize/sign-in")
	for i := 0; i < 5; i++ {
		r := b.Submit(p, f, "action=sign-in", map[string]string{"identifier": a.Handle.String(), "password": "wrong"})
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Body, "Wrong handle") {
			t.Fatalf("wrong password %d: %d", i, r.Status)
		}
	}
	r := b.Submit(p, f, "action=sign-in", map[string]string{"identifier": a.Handle.String(), "password": a.Password})
	if r.Status != http.StatusTooManyRequests || !strings.Contains(r.Body, "Too many sign-in attempts") {
		t.Fatalf("right password during the lockout: %d %s", r.Status, r.Body)
	}
	// createSession shares the lockout.
	if got := e.Do("POST", "/xrpc/com.atproto.server.createSession", nil, "", map[string]string{"identifier": a.Handle.String(), "password": a.Password}); got.Status != 429 {
		t.Fatalf("createSession during the lockout: %d %s", got.Status, got.Body)
	}
}

var mailCode = regexp.MustCompile(`[A-Z2-7]{5}-[A-Z2-7]{5}`)

// TestSignInEmailCode: an account with the email sign-in code on signs in
// with its password and then the code mailed to it.
func TestSignInEmailCode(t *testing.T) {
	smtp := mailtest.Start(t)
	w := oauthtest.NewWorld()
	ae := apitest.NewPDS(t, func(o *pds.Options) {
		o.Service.Hostname = oauthtest.PDSHost
		s, err := mail.NewSMTP(smtp.URL())
		if err != nil {
			t.Fatal(err)
		}
		s.TLS, s.RequireTLS = smtp.TLS, true
		o.Mail, o.MailBackoff = s, 20*time.Millisecond
	}, func(c *api.Config) { c.OAuth.ClientHTTP = w.Client() })
	w.Serve(t, oauthtest.PDSHost, ae.API.Handler())
	e := &env{Env: ae, w: w}
	app := oauthtest.NewApp(t, w, oauthtest.AppOptions{})
	a := e.account(app)
	seq, err := e.Log.Append(context.Background(), events.Must(a.DID, &events.EmailAuthFactor{Enabled: true}))
	if err != nil {
		t.Fatal(err)
	}
	e.Runner.CatchUp(context.Background(), seq)
	acct, _ := e.Accounts.Get(context.Background(), a.DID)

	redirect, _ := app.OAuth.StartAuthFlow(context.Background(), a.DID.String())
	b := oauthtest.NewBrowser(t, w)
	p := b.Get(redirect)
	p2 := b.Submit(p, p.Form(t, "/oauth/authorize/sign-in"), "action=sign-in", map[string]string{"identifier": a.Handle.String(), "password": a.Password})
	if p2.Status != 200 || !strings.Contains(p2.Body, `name="code"`) || strings.Contains(p2.Body, `name="password"`) {
		t.Fatalf("code step: %d %s", p2.Status, p2.Body)
	}
	m := smtp.Wait(acct.Email, "")
	code := mailCode.FindString(m.Text)
	if code == "" {
		t.Fatalf("no code in %q", m.Text)
	}
	f := p2.Form(t, "/oauth/authorize/sign-in")
	if r := b.Submit(p2, f, "action=sign-in", map[string]string{"code": "AAAAA-BBBBB"}); r.Status != http.StatusUnauthorized || !strings.Contains(r.Body, "code is wrong") {
		t.Fatalf("wrong code: %d %s", r.Status, r.Body)
	}
	r := b.Submit(p2, f, "action=sign-in", map[string]string{"code": code})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("right code: %d %s", r.Status, r.Body)
	}
	consent := b.Follow(r)
	if consent.Status != 200 || !strings.Contains(consent.Body, "Allow access") {
		t.Fatalf("consent after the code: %d %s", consent.Status, consent.Body)
	}
}

// TestScopes: an app granted only likes can like, and nothing else.
func TestScopes(t *testing.T) {
	e := newEnv(t)
	app := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{Scopes: []string{"atproto", "repo:app.bsky.feed.like?action=create", "transition:email"}})
	a := e.account(app)
	sess := login(t, e, app, a)
	ctx := context.Background()
	c := sess.APIClient()
	var out map[string]any
	like := map[string]any{"repo": a.DID.String(), "collection": "app.bsky.feed.like", "record": map[string]any{"$type": "app.bsky.feed.like",
		"subject":   map[string]any{"uri": "at://did:plc:x/app.bsky.feed.post/3k2", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
		"createdAt": syntax.DatetimeNow().String()}}
	if err := c.Post(ctx, "com.atproto.repo.createRecord", like, &out); err != nil {
		t.Fatalf("like: %v", err)
	}
	for name, call := range map[string]func() error{
		"post": func() error { _, err := post(sess, "not allowed"); return err },
		"delete like": func() error {
			rkey := syntax.ATURI(out["uri"].(string)).RecordKey()
			return c.Post(ctx, "com.atproto.repo.deleteRecord", map[string]any{"repo": a.DID.String(), "collection": "app.bsky.feed.like", "rkey": rkey.String()}, nil)
		},
		"put like": func() error {
			return c.Post(ctx, "com.atproto.repo.putRecord", map[string]any{"repo": a.DID.String(), "collection": "app.bsky.feed.like", "rkey": "3kabc", "record": like["record"]}, nil)
		},
		"createAppPassword": func() error {
			return c.Post(ctx, "com.atproto.server.createAppPassword", map[string]any{"name": "x"}, nil)
		},
		"updateHandle": func() error {
			return c.Post(ctx, "com.atproto.identity.updateHandle", map[string]any{"handle": "new.test"}, nil)
		},
		"getPreferences": func() error { return c.Get(ctx, "app.bsky.actor.getPreferences", nil, nil) },
	} {
		err := call()
		if err == nil || !(strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "Forbidden") || strings.Contains(err.Error(), "ScopeMissing")) {
			t.Errorf("%s: %v, want a 403", name, err)
		}
	}
	var gs map[string]any
	if err := c.Get(ctx, "com.atproto.server.getSession", nil, &gs); err != nil || gs["email"] == nil {
		t.Fatalf("getSession with transition:email: %v %v", gs, err)
	}
	// The refusal names the missing scope.
	u := issuer + "/xrpc/com.atproto.server.createAppPassword"
	st := send(t, e, "POST", u, "DPoP "+sess.Data.AccessToken, proofFor(t, sess.DPoPPrivateKey, "POST", u, sess.Data.DPoPHostNonce, sess.Data.AccessToken, ""), strings.NewReader(`{"name":"x"}`))
	if st.status != 403 || st.error != "Forbidden" {
		t.Fatalf("createAppPassword over OAuth: %+v", st)
	}
}

// TestConfidentialAndLoopback: a confidential client (private_key_jwt,
// ES256 key in its jwks) gets the extended session lifetime and its
// assertions are single use; a loopback development client signs in too.
func TestConfidentialAndLoopback(t *testing.T) {
	e := newEnv(t)
	conf := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{Host: "conf.example.com", Confidential: true})
	loop := oauthtest.NewLoopbackApp(t, e.w, nil)
	a := e.account(conf, loop)
	sess := login(t, e, conf, a)
	if _, err := post(sess, "from a confidential client"); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.RefreshTokens(context.Background()); err != nil {
		t.Fatalf("confidential refresh: %v", err)
	}
	ss, _ := e.PDS.OAuth.Sessions(context.Background(), a.DID)
	if len(ss) != 1 || !ss[0].Confidential || ss[0].ClientAuth.Method != "private_key_jwt" {
		t.Fatalf("session: %+v", ss)
	}
	end, _ := time.Parse(time.RFC3339Nano, ss[0].SessionExpiresAt)
	if d := time.Until(end); d < 700*24*time.Hour {
		t.Fatalf("confidential session lifetime %v, want about 2 years", d)
	}
	// A client assertion is single use.
	assertion, err := conf.OAuth.Config.NewClientAssertion(issuer)
	if err != nil {
		t.Fatal(err)
	}
	r := newRaw(t, e)
	f := parForm(conf)
	f.Set("client_assertion_type", oauth.ClientAssertionJWTBearer)
	f.Set("client_assertion", assertion)
	if a := r.post("/oauth/par", f, nil, false); a.status != 201 {
		t.Fatalf("PAR with an assertion: %d %v", a.status, a.body)
	}
	if a := r.post("/oauth/par", f, nil, false); a.status != 401 || a.err() != "invalid_client" {
		t.Fatalf("replayed assertion: %d %v", a.status, a.body)
	}
	f.Del("client_assertion")
	f.Del("client_assertion_type")
	if a := r.post("/oauth/par", f, nil, false); a.status != 401 || a.err() != "invalid_client" {
		t.Fatalf("confidential client without an assertion: %d %v", a.status, a.body)
	}

	lsess := login(t, e, loop, a)
	if _, err := post(lsess, "from a loopback client"); err != nil {
		t.Fatal(err)
	}
	ls, _ := e.PDS.OAuth.Sessions(context.Background(), a.DID)
	if len(ls) != 2 {
		t.Fatalf("sessions: %+v", ls)
	}
}

var _ = oauthproj.RequestPending
