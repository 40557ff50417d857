package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/oauth/oauthtest"
	"github.com/pdslog/pdslog/api/pds"
)

const issuer = "https://" + oauthtest.PDSHost

// env is a PDS whose public URL is https://pds.example.com, served over
// TLS in a world of test hosts.
type env struct {
	*apitest.Env
	w *oauthtest.World
}

func newEnv(t *testing.T, configure ...func(*api.Config)) *env {
	t.Helper()
	w := oauthtest.NewWorld()
	cfgs := append([]func(*api.Config){func(c *api.Config) { c.OAuth.ClientHTTP = w.Client() }}, configure...)
	e := apitest.NewPDS(t, func(o *pds.Options) { o.Service.Hostname = oauthtest.PDSHost }, cfgs...)
	w.Serve(t, oauthtest.PDSHost, e.API.Handler())
	return &env{Env: e, w: w}
}

// account creates an account the app's directory knows.
func (e *env) account(apps ...*oauthtest.App) *apitest.Account {
	a := e.CreateAccount()
	for _, app := range apps {
		app.Know(a.DID, a.Handle)
	}
	return a
}

// login runs the whole flow for a: PAR, the pages, the code exchange.
func login(t *testing.T, e *env, app *oauthtest.App, a *apitest.Account) *oauth.ClientSession {
	t.Helper()
	ctx := context.Background()
	redirect, err := app.OAuth.StartAuthFlow(ctx, a.DID.String())
	if err != nil {
		t.Fatalf("StartAuthFlow: %v", err)
	}
	b := oauthtest.NewBrowser(t, e.w)
	cb := b.SignInAndConsent(redirect, a.Handle.String(), a.Password)
	data, err := app.OAuth.ProcessCallback(ctx, oauthtest.Callback(cb))
	if err != nil {
		t.Fatalf("ProcessCallback(%s): %v", cb, err)
	}
	sess, err := app.OAuth.ResumeSession(ctx, data.AccountDID, data.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func post(sess *oauth.ClientSession, text string) (string, error) {
	var out struct{ URI string }
	err := sess.APIClient().Post(context.Background(), "com.atproto.repo.createRecord", map[string]any{
		"repo": sess.Data.AccountDID.String(), "collection": "app.bsky.feed.post",
		"record": map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": syntax.DatetimeNow().String()},
	}, &out)
	return out.URI, err
}

// TestDiscovery: indigo's resolver accepts both metadata documents as the
// atproto profile requires them (https issuer without a port or a path,
// PAR required, S256, ES256, iss parameter, client metadata documents).
func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	r := oauth.NewResolver()
	r.Client = e.w.Client()
	as, err := r.ResolveAuthServerURL(context.Background(), issuer)
	if err != nil || as != issuer {
		t.Fatalf("protected resource: %q %v", as, err)
	}
	md, err := r.ResolveAuthServerMetadata(context.Background(), issuer)
	if err != nil {
		t.Fatalf("authorization server metadata: %v", err)
	}
	if md.PushedAuthorizationRequestEndpoint != issuer+"/oauth/par" || md.TokenEndpoint != issuer+"/oauth/token" ||
		md.RevocationEndpoint != issuer+"/oauth/revoke" {
		t.Fatalf("endpoints: %+v", md)
	}
	resp, err := e.w.Client().Get(issuer + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]any
	json.NewDecoder(resp.Body).Decode(&raw)
	for _, s := range raw["scopes_supported"].([]any) {
		if strings.HasPrefix(s.(string), "include:") {
			t.Errorf("scopes_supported claims permission sets: %v", raw["scopes_supported"])
		}
	}
	if got := fmt.Sprint(raw["code_challenge_methods_supported"]); got != "[S256]" {
		t.Errorf("code_challenge_methods_supported %s", got)
	}
	if got := fmt.Sprint(raw["dpop_signing_alg_values_supported"]); got != "[ES256]" {
		t.Errorf("dpop_signing_alg_values_supported %s", got)
	}
}

// TestIndigoClient: indigo's OAuth client signs in through the pages,
// exchanges the code, writes a post with the DPoP-bound token, refreshes
// (forced), and after a revocation (its logout) is refused, also after the
// projections are rebuilt from the log.
func TestIndigoClient(t *testing.T) {
	e := newEnv(t)
	app := oauthtest.NewApp(t, e.w, oauthtest.AppOptions{Name: "Test App"})
	a := e.account(app)
	sess := login(t, e, app, a)
	if sess.Data.AccountDID != a.DID || strings.Join(sess.Data.Scopes, " ") != "atproto transition:generic" {
		t.Fatalf("session: %+v", sess.Data)
	}
	uri, err := post(sess, "hello over OAuth")
	if err != nil {
		t.Fatalf("createRecord with the DPoP-bound token: %v", err)
	}
	if _, err := e.Records.Get(context.Background(), a.DID, "app.bsky.feed.post", syntax.ATURI(uri).RecordKey()); err != nil {
		t.Fatalf("record %s not in the PDS: %v", uri, err)
	}
	// getSession works; the email is hidden without transition:email.
	var gs map[string]any
	if err := sess.APIClient().Get(context.Background(), "com.atproto.server.getSession", nil, &gs); err != nil {
		t.Fatal(err)
	}
	if gs["did"] != a.DID.String() || gs["email"] != nil {
		t.Fatalf("getSession: %v", gs)
	}

	// Forced refresh: new tokens; the old access token is retired.
	oldAccess, oldRefresh := sess.Data.AccessToken, sess.Data.RefreshToken
	if _, err := sess.RefreshTokens(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if sess.Data.AccessToken == oldAccess || sess.Data.RefreshToken == oldRefresh {
		t.Fatal("refresh did not rotate the tokens")
	}
	if _, err := post(sess, "after refresh"); err != nil {
		t.Fatalf("write after refresh: %v", err)
	}
	st := rawCall(t, e, sess, oldAccess, "GET", "com.atproto.server.getSession")
	if st.status != 401 || st.error != "invalid_token" || !strings.Contains(st.wwwAuth, `error="invalid_token"`) {
		t.Fatalf("old access token after refresh: %+v", st)
	}

	// Revoke (indigo's logout): the session is refused everywhere.
	token := sess.Data.AccessToken
	if err := app.OAuth.Logout(context.Background(), a.DID, sess.Data.SessionID); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if st := rawCall(t, e, sess, token, "GET", "com.atproto.server.getSession"); st.status != 401 || st.error != "invalid_token" {
		t.Fatalf("revoked token: %+v", st)
	}
	// Replaying the log gives the same answer.
	if err := e.Runner.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := rawCall(t, e, sess, token, "GET", "com.atproto.server.getSession"); st.status != 401 || st.error != "invalid_token" {
		t.Fatalf("revoked token after rebuild: %+v", st)
	}
	if ss, _ := e.PDS.OAuth.Sessions(context.Background(), a.DID); len(ss) != 0 {
		t.Fatalf("sessions after revocation: %+v", ss)
	}
}

type callResult struct {
	status  int
	error   string
	wwwAuth string
	nonce   string
	body    string
}

// rawCall makes an XRPC call with token and a fresh DPoP proof of sess's
// key (with the session's current host nonce).
func rawCall(t *testing.T, e *env, sess *oauth.ClientSession, token, method, nsid string) callResult {
	t.Helper()
	u := issuer + "/xrpc/" + nsid
	proof := proofFor(t, sess.DPoPPrivateKey, method, u, sess.Data.DPoPHostNonce, token, "")
	return send(t, e, method, u, "DPoP "+token, proof, nil)
}

func send(t *testing.T, e *env, method, u, authz, proof string, body io.Reader) callResult {
	t.Helper()
	req, _ := http.NewRequest(method, u, body)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.w.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb struct{ Error string }
	json.Unmarshal(b, &eb)
	return callResult{status: resp.StatusCode, error: eb.Error, wwwAuth: resp.Header.Get("WWW-Authenticate"), nonce: resp.Header.Get("DPoP-Nonce"), body: string(b)}
}

// proofFor signs a DPoP proof with key for method and htu (nonce, ath of
// token, jti: each when not "").
func proofFor(t *testing.T, key atcrypto.PrivateKey, method, htu, nonce, token, jti string) string {
	t.Helper()
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := pub.JWK()
	if err != nil {
		t.Fatal(err)
	}
	if jti == "" {
		jti = fmt.Sprintf("jti-%d", time.Now().UnixNano())
	}
	claims := jwt.MapClaims{"jti": jti, "htm": method, "htu": htu, "iat": time.Now().Unix()}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod("ES256"), claims)
	tok.Header["typ"] = "dpop+jwt"
	tok.Header["jwk"] = jwk
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var _ = url.Values{}
