package oauth

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/oauthcore"
)

//go:embed templates/*.html assets/style.css
var files embed.FS

// templates are the pages, each the layout plus its content.
type templates struct {
	pages map[string]*template.Template
	css   []byte
	etag  string
}

var pageNames = []string{"sign-in", "choose", "consent", "error", "account", "account-sign-in"}

func loadTemplates() *templates {
	funcs := template.FuncMap{
		"when": func(s string) string {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return s
			}
			return t.UTC().Format("2 Jan 2006, 15:04 UTC")
		},
		"initial": func(s string) string {
			s = strings.TrimPrefix(s, "@")
			if s == "" {
				return "?"
			}
			return strings.ToUpper(s[:1])
		},
	}
	base := template.Must(template.New("layout").Funcs(funcs).ParseFS(files, "templates/layout.html"))
	t := &templates{pages: map[string]*template.Template{}}
	for _, n := range pageNames {
		t.pages[n] = template.Must(template.Must(base.Clone()).ParseFS(files, "templates/"+n+".html"))
	}
	t.css, _ = files.ReadFile("assets/style.css")
	sum := sha256.Sum256(t.css)
	t.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	return t
}

// view is what every page is rendered from.
type view struct {
	Title    string
	Wide     bool // a wider page (the account page)
	Provider string
	CSRF     string
	Error    string
	Notice   string
	// The authorization in progress (sign-in, choose, consent pages).
	RequestURI string
	ClientID   string
	Client     *clientView
	Accounts   []accountView
	Account    *accountView
	Items      []oauthcore.Item
	// Sign-in forms.
	Identifier    string
	HintLocked    bool
	Remember      bool
	NeedCode      bool
	Pending       string
	CodeSentTo    string
	SignInAction  string
	AnotherURL    string
	ForgotPassURL string
	// The account page.
	Page *accountPage
	// The error page.
	ErrorCode string
	BackURL   string
}

type clientView struct {
	Name     string
	Host     string
	URL      string
	Logo     string
	Loopback bool
	TosURI   string
	Policy   string
}

type accountView struct {
	DID       string
	Handle    string
	Email     string
	URL       string // where choosing it leads
	LoginNeed bool
	Current   bool
}

// pageHeaders sets the pages' security headers: a strict CSP (no script,
// no frames, styles from this server, forms posting here and, after
// consent, redirecting to formTargets), no caching, no referrer.
func pageHeaders(c echo.Context, formTargets ...string) {
	h := c.Response().Header()
	fa := "'self'"
	for _, t := range formTargets {
		fa += " " + t
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action "+fa+
		"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer a browser sends
	// "Origin: null" on the forms' posts, which the origin check refuses;
	// other sites (client logos, the redirect back) still get no referrer.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// redirectOrigin is the CSP source of a redirect URI: its origin, or its
// scheme for a private-use scheme.
func redirectOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + ":"
}

func (h *Handlers) render(c echo.Context, status int, name string, v *view, formTargets ...string) error {
	v.Provider = h.provider
	var buf bytes.Buffer
	if err := h.tmpl.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		return err
	}
	pageHeaders(c, formTargets...)
	return c.HTMLBlob(status, buf.Bytes())
}

// errorPage renders the error page: for a problem this server cannot send
// back to the client (an unknown request, a form that did not come from
// its page).
func (h *Handlers) errorPage(c echo.Context, status int, title, msg, code string) error {
	return h.render(c, status, "error", &view{Title: title, Error: msg, ErrorCode: code, BackURL: "/account"})
}

func (h *Handlers) stylesheet(c echo.Context) error {
	hdr := c.Response().Header()
	hdr.Set("Cache-Control", "public, max-age=3600")
	hdr.Set("ETag", h.tmpl.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if c.Request().Header.Get("If-None-Match") == h.tmpl.etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", h.tmpl.css)
}

// The device cookie names the browser: its sign-ins and the requests
// bound to it. Secure (a __Host- cookie: this host only, https only)
// unless in dev mode; HttpOnly; SameSite=Lax.
func (h *Handlers) cookieName() string {
	if !h.secureCookies() {
		return "pdslog-device"
	}
	return "__Host-pdslog-device"
}

// secureCookies: the cookie is Secure unless in dev mode or served over
// plain http (a localhost issuer).
func (h *Handlers) secureCookies() bool {
	return !h.cfg.DevMode && strings.HasPrefix(h.issuer, "https://")
}

// deviceID is the browser's device id from its cookie, or "".
func (h *Handlers) deviceID(c echo.Context) string {
	ck, err := c.Cookie(h.cookieName())
	if err != nil || !strings.HasPrefix(ck.Value, oauthcore.PrefixDevice) || len(ck.Value) < 40 || len(ck.Value) > 80 {
		return ""
	}
	return ck.Value
}

// ensureDevice returns the browser's device id, giving it one if it has
// none.
func (h *Handlers) ensureDevice(c echo.Context) string {
	if id := h.deviceID(c); id != "" {
		return id
	}
	id := oauthcore.NewID(oauthcore.PrefixDevice)
	c.SetCookie(&http.Cookie{Name: h.cookieName(), Value: id, Path: "/", MaxAge: 400 * 24 * 3600,
		HttpOnly: true, Secure: h.secureCookies(), SameSite: http.SameSiteLaxMode})
	return id
}

// sameOrigin refuses a form post another site made: Origin (which
// browsers send with every POST) must be this server's.
func (h *Handlers) sameOrigin(c echo.Context) bool {
	o := c.Request().Header.Get("Origin")
	if o == "" {
		return true // not a browser's form post: the CSRF token still has to match
	}
	iu, _ := url.Parse(h.issuer)
	return strings.EqualFold(o, iu.Scheme+"://"+iu.Host)
}

// formGuard checks a page's form post: this server's origin, the device
// cookie, and the CSRF token of that device. It returns the device id,
// or renders the refusal.
func (h *Handlers) formGuard(c echo.Context) (string, bool, error) {
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return "", false, h.errorPage(c, http.StatusBadRequest, "Something went wrong", "The form could not be read.", "invalid_request")
	}
	dev := h.deviceID(c)
	if !h.sameOrigin(c) || !h.checkCSRF(dev, r.PostForm.Get("csrf")) {
		h.logger.Warn("oauth: form refused (CSRF)", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "remote_ip", c.RealIP())
		return "", false, h.errorPage(c, http.StatusForbidden, "This form has expired",
			"The form was not sent from this page in this browser (its security token is missing or wrong). Go back, reload the page and try again.", "csrf")
	}
	return dev, true, nil
}

// pendingSignIns are sign-ins whose password was right and that wait for
// the email code: kept in memory for a quarter of an hour, single use, tied
// to the device (a restart asks for the password again).
type pendingSignIns struct {
	mu sync.Mutex
	m  map[string]*pendingSignIn
}

type pendingSignIn struct {
	DID        string
	Identifier string
	Device     string
	Remember   bool
	Expires    time.Time
}

func newPendingSignIns() *pendingSignIns { return &pendingSignIns{m: map[string]*pendingSignIn{}} }

const pendingTTL = 15 * time.Minute

func (ps *pendingSignIns) put(p *pendingSignIn, now time.Time) string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.m) > 10_000 {
		for k, v := range ps.m {
			if now.After(v.Expires) {
				delete(ps.m, k)
			}
		}
	}
	tok := oauthcore.NewID("")
	p.Expires = now.Add(pendingTTL)
	ps.m[tok] = p
	return tok
}

func (ps *pendingSignIns) get(tok, device string, now time.Time) *pendingSignIn {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.m[tok]
	if !ok || p.Device != device || now.After(p.Expires) {
		return nil
	}
	return p
}

func (ps *pendingSignIns) done(tok string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.m, tok)
}
