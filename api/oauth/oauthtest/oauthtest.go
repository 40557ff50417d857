// Package oauthtest runs the OAuth parts of tests for real: a World of
// public https hosts (pds.example.com, app.example.com, …) served by test
// listeners under a test CA, as DNS and a CA would for a deployment;
// client apps built on indigo's atproto/auth/oauth client (public,
// confidential with private_key_jwt, and loopback), whose metadata
// documents the world serves; and a cookie-keeping page driver that signs
// in and answers consent through the server-rendered forms, as a browser
// without JavaScript would.
package oauthtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	stdhtml "html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"golang.org/x/net/html"

	"github.com/pdslog/pdslog/api/pds/ssrf"
)

// PDSHost is the test PDS's public hostname: its issuer is
// https://pds.example.com.
const PDSHost = "pds.example.com"

// World maps public hostnames (port 443) to test listeners.
type World struct {
	mu    sync.Mutex
	hosts map[string]string // "host:443" -> listener address
	pool  *x509.CertPool
	cert  *x509.Certificate
}

// NewWorld returns an empty world.
func NewWorld() *World { return &World{hosts: map[string]string{}, pool: x509.NewCertPool()} }

// Map routes host:443 to addr.
func (w *World) Map(host, addr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hosts[host+":443"] = addr
}

// Serve serves h over TLS as https://host.
func (w *World) Serve(t testing.TB, host string, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	w.mu.Lock()
	w.cert = srv.Certificate()
	w.pool.AddCert(srv.Certificate())
	w.mu.Unlock()
	w.Map(host, srv.Listener.Addr().String())
	return srv
}

// CAPEM is the test CA every World server's certificate chains to.
func (w *World) CAPEM() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cert == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.cert.Raw})
}

// Addr is the listener address host:443 maps to.
func (w *World) Addr(host string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hosts[host+":443"]
}

func (w *World) dial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		w.mu.Lock()
		to, ok := w.hosts[addr]
		w.mu.Unlock()
		if ok {
			addr = to
		}
		return dial(ctx, network, addr)
	}
}

// Transport reaches the world's hosts (and loopback addresses as they
// are), trusting the test CA.
func (w *World) Transport() *http.Transport {
	t := ssrf.Transport(false)
	t.DialContext = w.dial((&net.Dialer{Timeout: 5 * time.Second}).DialContext)
	t.TLSClientConfig = &tls.Config{RootCAs: w.pool}
	return t
}

// GuardedTransport is ssrf.Transport(true), the server's guard, resolving
// the world's names to their (loopback) listeners: the guard refuses them
// at dial time, as it would a public name pointing inside.
func (w *World) GuardedTransport() *http.Transport {
	t := ssrf.Transport(true)
	t.DialContext = w.dial(t.DialContext)
	t.TLSClientConfig = &tls.Config{RootCAs: w.pool}
	return t
}

// Client is an HTTP client over Transport.
func (w *World) Client() *http.Client {
	return &http.Client{Transport: w.Transport(), Timeout: 30 * time.Second}
}

// App is a client app on indigo's OAuth client.
type App struct {
	ClientID string
	Callback string
	Scopes   []string
	OAuth    *oauth.ClientApp
	Dir      *identity.MockDirectory
	// Metadata is the document the world serves at ClientID (tests may
	// change it before the server first fetches it).
	Metadata map[string]any
	mu       sync.Mutex
	current  struct {
		did syntax.DID
		id  string
	}
}

// AppOptions configure NewApp.
type AppOptions struct {
	Host         string   // default app.example.com
	Scopes       []string // default atproto transition:generic
	Confidential bool     // private_key_jwt with an ES256 key in jwks
	Name         string
}

// NewApp serves a client app's metadata at https://HOST/oauth-client-metadata.json
// and its callback at https://HOST/callback (which only echoes: tests
// take the redirect themselves).
func NewApp(t testing.TB, w *World, o AppOptions) *App {
	if o.Host == "" {
		o.Host = "app.example.com"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"atproto", "transition:generic"}
	}
	id := "https://" + o.Host + "/oauth-client-metadata.json"
	cfg := oauth.NewPublicConfig(id, "https://"+o.Host+"/callback", o.Scopes)
	cfg.UserAgent = "pdslog-oauthtest"
	if o.Confidential {
		key, err := atcrypto.GeneratePrivateKeyP256()
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.SetClientSecret(key, "k1"); err != nil {
			t.Fatal(err)
		}
	}
	a := &App{ClientID: id, Callback: cfg.CallbackURL, Scopes: o.Scopes}
	a.setup(w, &cfg)
	md := cfg.ClientMetadata()
	raw, _ := json.Marshal(md)
	_ = json.Unmarshal(raw, &a.Metadata)
	if o.Name != "" {
		a.Metadata["client_name"] = o.Name
	}
	a.Metadata["client_uri"] = "https://" + o.Host
	if o.Confidential {
		jwks, _ := json.Marshal(cfg.PublicJWKS())
		var j any
		_ = json.Unmarshal(jwks, &j)
		a.Metadata["jwks"] = j
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth-client-metadata.json", func(rw http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		b, _ := json.Marshal(a.Metadata)
		a.mu.Unlock()
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(b)
	})
	a.web(mux)
	w.Serve(t, o.Host, mux)
	return a
}

// web adds the app's own pages, as a real web app on indigo's client has
// them: /login?id=DID (starts the flow and redirects to the PDS),
// /callback (exchanges the code, then writes a post with the DPoP-bound
// token), /post (writes with the current session), /refresh (forces a
// token refresh, then writes). Each page says what happened in a
// <p id="result"> (and the error in <p id="error">).
func (a *App) web(mux *http.ServeMux) {
	page := func(rw http.ResponseWriter, status int, result, errText string) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.WriteHeader(status)
		fmt.Fprintf(rw, "<!doctype html><title>Test App</title><h1>Test App</h1><p id=\"result\">%s</p><p id=\"error\">%s</p>",
			stdhtml.EscapeString(result), stdhtml.EscapeString(errText))
	}
	write := func(ctx context.Context, text string) (string, error) {
		a.mu.Lock()
		did, id := a.current.did, a.current.id
		a.mu.Unlock()
		sess, err := a.OAuth.ResumeSession(ctx, did, id)
		if err != nil {
			return "", err
		}
		var out struct{ URI string }
		err = sess.APIClient().Post(ctx, "com.atproto.repo.createRecord", map[string]any{
			"repo": did.String(), "collection": "app.bsky.feed.post",
			"record": map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": syntax.DatetimeNow().String()},
		}, &out)
		return out.URI, err
	}
	mux.HandleFunc("GET /login", func(rw http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if id == "" {
			id = "https://" + PDSHost
		}
		u, err := a.OAuth.StartAuthFlow(r.Context(), id)
		if err != nil {
			page(rw, 500, "", err.Error())
			return
		}
		http.Redirect(rw, r, u, http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(rw http.ResponseWriter, r *http.Request) {
		data, err := a.OAuth.ProcessCallback(r.Context(), r.URL.Query())
		if err != nil {
			page(rw, 400, "", err.Error())
			return
		}
		a.mu.Lock()
		a.current.did, a.current.id = data.AccountDID, data.SessionID
		a.mu.Unlock()
		uri, err := write(r.Context(), "hello from the browser flow")
		if err != nil {
			page(rw, 500, "signed in as "+data.AccountDID.String(), err.Error())
			return
		}
		page(rw, 200, "signed in as "+data.AccountDID.String()+"; posted "+uri, "")
	})
	mux.HandleFunc("GET /post", func(rw http.ResponseWriter, r *http.Request) {
		uri, err := write(r.Context(), "another post")
		if err != nil {
			page(rw, 500, "", err.Error())
			return
		}
		page(rw, 200, "posted "+uri, "")
	})
	mux.HandleFunc("GET /refresh", func(rw http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		did, id := a.current.did, a.current.id
		a.mu.Unlock()
		sess, err := a.OAuth.ResumeSession(r.Context(), did, id)
		if err == nil {
			_, err = sess.RefreshTokens(r.Context())
		}
		if err != nil {
			page(rw, 500, "", "refresh: "+err.Error())
			return
		}
		uri, err := write(r.Context(), "after a refresh")
		if err != nil {
			page(rw, 500, "", err.Error())
			return
		}
		page(rw, 200, "refreshed; posted "+uri, "")
	})
}

// SetMetadata changes a field of the served metadata.
func (a *App) SetMetadata(k string, v any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.Metadata[k] = v
}

// NewLoopbackApp is a development client: client_id
// http://localhost?redirect_uri=http://127.0.0.1:PORT/callback&scope=…,
// whose metadata the server derives.
func NewLoopbackApp(t testing.TB, w *World, scopes []string) *App {
	if len(scopes) == 0 {
		scopes = []string{"atproto", "transition:generic"}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { fmt.Fprintf(rw, "callback %s", r.URL.RawQuery) }))
	t.Cleanup(srv.Close)
	cfg := oauth.NewLocalhostConfig(srv.URL+"/callback", scopes)
	a := &App{ClientID: cfg.ClientID, Callback: cfg.CallbackURL, Scopes: scopes}
	a.setup(w, &cfg)
	return a
}

func (a *App) setup(w *World, cfg *oauth.ClientConfig) {
	a.OAuth = oauth.NewClientApp(cfg, oauth.NewMemStore())
	a.OAuth.Client = w.Client()
	a.OAuth.Resolver.Client = w.Client()
	a.Dir = identity.NewMockDirectory()
	a.OAuth.Dir = a.Dir
}

// Know tells the app's identity directory that did (handle) is hosted at
// https://pds.example.com.
func (a *App) Know(did syntax.DID, handle syntax.Handle) {
	a.Dir.Insert(identity.Identity{DID: did, Handle: handle, Services: map[string]identity.ServiceEndpoint{
		"atproto_pds": {Type: "AtprotoPersonalDataServer", URL: "https://" + PDSHost}}})
}

// Browser drives the pages over HTTP with a cookie jar, following no
// redirect by itself.
type Browser struct {
	T      testing.TB
	Client *http.Client
	// Origin, if set, is sent with form posts (as browsers do).
	Origin string
}

// NewBrowser returns a browser in w.
func NewBrowser(t testing.TB, w *World) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, Origin: "https://" + PDSHost, Client: &http.Client{Transport: w.Transport(), Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Page is a response and its forms.
type Page struct {
	Status   int
	URL      *url.URL
	Location string
	Header   http.Header
	Body     string
	Forms    []*Form
}

// Form is an HTML form: its action and its fields (hidden inputs and
// prefilled values), and its submit buttons (name=value).
type Form struct {
	Action  string
	Method  string
	Fields  url.Values
	Buttons []string
}

// Get loads u.
func (b *Browser) Get(u string) *Page {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.T.Fatal(err)
	}
	return b.do(req)
}

// Follow loads p's redirect target.
func (b *Browser) Follow(p *Page) *Page {
	b.T.Helper()
	if p.Location == "" {
		b.T.Fatalf("no redirect from %s (%d): %s", p.URL, p.Status, p.Body)
	}
	return b.Get(p.Resolve(p.Location))
}

// Resolve makes ref absolute against the page's URL.
func (p *Page) Resolve(ref string) string {
	u, err := p.URL.Parse(ref)
	if err != nil {
		return ref
	}
	return u.String()
}

// Form returns the page's form posting to action.
func (p *Page) Form(t testing.TB, action string) *Form {
	t.Helper()
	for _, f := range p.Forms {
		if f.Action == action {
			return f
		}
	}
	t.Fatalf("no form to %s on %s (%d):\n%s", action, p.URL, p.Status, p.Body)
	return nil
}

// Submit posts form f of page p with fields set (and button, a
// "name=value" of one of its buttons, if not "").
func (b *Browser) Submit(p *Page, f *Form, button string, set map[string]string) *Page {
	b.T.Helper()
	vals := url.Values{}
	for k, v := range f.Fields {
		vals[k] = append([]string(nil), v...)
	}
	for k, v := range set {
		vals.Set(k, v)
	}
	if button != "" {
		k, v, _ := strings.Cut(button, "=")
		vals.Set(k, v)
	}
	return b.Post(p.Resolve(f.Action), vals)
}

// Post posts a form.
func (b *Browser) Post(u string, vals url.Values) *Page {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(vals.Encode()))
	if err != nil {
		b.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.Origin != "" {
		req.Header.Set("Origin", b.Origin)
	}
	return b.do(req)
}

func (b *Browser) do(req *http.Request) *Page {
	b.T.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		b.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &Page{Status: resp.StatusCode, URL: req.URL, Location: resp.Header.Get("Location"), Header: resp.Header, Body: string(body)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		p.Forms = parseForms(string(body))
	}
	return p
}

func attr(n *html.Node, k string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == k {
			return a.Val, true
		}
	}
	return "", false
}

func parseForms(body string) []*Form {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return nil
	}
	var forms []*Form
	var cur *Form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				action, _ := attr(n, "action")
				method, _ := attr(n, "method")
				cur = &Form{Action: action, Method: method, Fields: url.Values{}}
				forms = append(forms, cur)
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
				cur = nil
				return
			case "input":
				if cur != nil {
					name, _ := attr(n, "name")
					typ, _ := attr(n, "type")
					val, _ := attr(n, "value")
					_, checked := attr(n, "checked")
					if name != "" && (typ != "checkbox" || checked) {
						cur.Fields.Set(name, val)
					}
				}
			case "button":
				if cur != nil {
					name, _ := attr(n, "name")
					val, _ := attr(n, "value")
					cur.Buttons = append(cur.Buttons, name+"="+val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return forms
}

// SignInAndConsent drives the pages from an authorize URL: sign in with
// identifier and password (when the sign-in page shows), then Authorize on
// the consent page. It returns the redirect back to the client.
func (b *Browser) SignInAndConsent(authorizeURL, identifier, password string) *url.URL {
	b.T.Helper()
	p := b.Get(authorizeURL)
	if p.Status != http.StatusOK {
		b.T.Fatalf("authorize page: %d %s", p.Status, p.Body)
	}
	if strings.Contains(p.Body, `action="/oauth/authorize/sign-in"`) && strings.Contains(p.Body, `name="password"`) {
		p = b.Submit(p, p.Form(b.T, "/oauth/authorize/sign-in"), "action=sign-in", map[string]string{"identifier": identifier, "password": password})
		if p.Status != http.StatusSeeOther {
			b.T.Fatalf("sign-in: %d %s", p.Status, p.Body)
		}
		p = b.Follow(p)
	}
	if p.Status == http.StatusSeeOther {
		u, _ := url.Parse(p.Location)
		return u
	}
	if p.Status != http.StatusOK {
		b.T.Fatalf("consent page: %d %s", p.Status, p.Body)
	}
	p = b.Submit(p, p.Form(b.T, "/oauth/authorize/consent"), "decision=allow", nil)
	if p.Status != http.StatusSeeOther {
		b.T.Fatalf("consent: %d %s", p.Status, p.Body)
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		b.T.Fatal(err)
	}
	return u
}

// Callback parses the query of a redirect back to the client (or its
// fragment, for response_mode=fragment).
func Callback(u *url.URL) url.Values {
	if u.RawQuery != "" {
		return u.Query()
	}
	q, _ := url.ParseQuery(u.Fragment)
	return q
}
