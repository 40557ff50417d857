package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/oauthcore"
	oauthproj "github.com/pdslog/pdslog/projections/oauth"
)

// accountPage is the account page's content.
type accountPage struct {
	Apps         []appView
	Devices      []deviceView
	AppPasswords []appPasswordView
	Others       []accountView // other accounts signed in on this browser
	NewPassword  *pds.NewAppPassword
}

type appView struct {
	SessionID string
	Name      string
	Host      string
	Loopback  bool
	Items     []oauthcore.Item
	Created   string
	Used      string
}

type deviceView struct {
	Device    string // hash
	UserAgent string
	IP        string
	At        string
	This      bool
	Remember  bool
}

type appPasswordView struct {
	Name       string
	Created    string
	Privileged bool
}

// accountFor is the account of the account page: the one named (signed in
// on this browser), else the first signed-in one; nil if none.
func (h *Handlers) accountFor(ctx context.Context, dev, did string) (*accountView, []accountView, error) {
	if dev == "" {
		return nil, nil, nil
	}
	accts, byDID, err := h.deviceAccounts(ctx, dev)
	if err != nil {
		return nil, nil, err
	}
	var live []accountView
	for _, a := range accts {
		if h.PDS.DeviceSignInLive(byDID[a.DID]) {
			live = append(live, a)
		}
	}
	for i := range live {
		if did == "" || live[i].DID == did {
			cur := live[i]
			cur.Current = true
			var others []accountView
			for _, o := range live {
				if o.DID != cur.DID {
					o.URL = "/account?" + url.Values{"did": {o.DID}}.Encode()
					others = append(others, o)
				}
			}
			return &cur, others, nil
		}
	}
	return nil, nil, nil
}

// account serves GET /account: the account page of the signed-in account,
// or its sign-in form.
func (h *Handlers) account(c echo.Context) error {
	dev := h.ensureDevice(c)
	cur, others, err := h.accountFor(c.Request().Context(), dev, c.QueryParam("did"))
	if err != nil {
		return err
	}
	if cur == nil {
		return h.render(c, http.StatusOK, "account-sign-in", &view{Title: "Sign in to your account", CSRF: h.csrfToken(dev),
			SignInAction: "/account/sign-in", Remember: false})
	}
	return h.renderAccount(c, dev, cur, others, nil, c.QueryParam("notice"))
}

func (h *Handlers) renderAccount(c echo.Context, dev string, cur *accountView, others []accountView, newPW *pds.NewAppPassword, notice string) error {
	ctx := c.Request().Context()
	did := syntax.DID(cur.DID)
	page := &accountPage{Others: others, NewPassword: newPW}
	sessions, err := h.PDS.OAuth.Sessions(ctx, did)
	if err != nil {
		return err
	}
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].CreatedAt > sessions[j].CreatedAt })
	for _, s := range sessions {
		av := appView{SessionID: s.ID, Name: s.ClientID, Items: oauthcore.Describe(s.Scope), Created: s.CreatedAt, Used: s.UpdatedAt}
		if cl, err := h.clients.Resolve(ctx, s.ClientID); err == nil {
			av.Name, av.Host, av.Loopback = cl.Name(), cl.Host(), cl.Loopback
		} else if u, err := url.Parse(s.ClientID); err == nil {
			av.Host = u.Host
		}
		page.Apps = append(page.Apps, av)
	}
	devs, err := h.PDS.OAuth.AccountDevices(ctx, did)
	if err != nil {
		return err
	}
	for _, d := range devs {
		page.Devices = append(page.Devices, deviceView{Device: d.Device, UserAgent: shortAgent(d.UserAgent), IP: d.IP, At: d.At,
			This: d.Device == devHash(dev), Remember: d.Remember})
	}
	aps, err := h.PDS.Accounts.AppPasswords(ctx, did)
	if err != nil {
		return err
	}
	for _, ap := range aps {
		page.AppPasswords = append(page.AppPasswords, appPasswordView{Name: ap.Name, Created: ap.CreatedAt, Privileged: ap.Privileged})
	}
	status := http.StatusOK
	if newPW != nil {
		status = http.StatusCreated
	}
	return h.render(c, status, "account", &view{Title: "Your account", Wide: true, CSRF: h.csrfToken(dev), Account: cur, Page: page, Notice: notice})
}

// shortAgent names a browser from its User-Agent.
func shortAgent(ua string) string {
	switch {
	case ua == "":
		return "Unknown browser"
	case strings.Contains(ua, "Firefox/"):
		return "Firefox" + onOS(ua)
	case strings.Contains(ua, "Edg/"):
		return "Edge" + onOS(ua)
	case strings.Contains(ua, "HeadlessChrome/"):
		return "Chrome (headless)" + onOS(ua)
	case strings.Contains(ua, "Chrome/"):
		return "Chrome" + onOS(ua)
	case strings.Contains(ua, "Safari/"):
		return "Safari" + onOS(ua)
	}
	if len(ua) > 60 {
		return ua[:60] + "…"
	}
	return ua
}

func onOS(ua string) string {
	for _, os := range []struct{ k, n string }{{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Mac OS X", "macOS"},
		{"Windows", "Windows"}, {"Linux", "Linux"}} {
		if strings.Contains(ua, os.k) {
			return " on " + os.n
		}
	}
	return ""
}

// accountSignIn serves the account page's sign-in form.
func (h *Handlers) accountSignIn(c echo.Context) error {
	dev, ok, err := h.formGuard(c)
	if !ok {
		return err
	}
	res := h.signIn(c, dev)
	if res.did == "" {
		v := &view{Title: "Sign in to your account", CSRF: h.csrfToken(dev), SignInAction: "/account/sign-in"}
		res.fill(v)
		return h.render(c, res.status, "account-sign-in", v)
	}
	return c.Redirect(http.StatusSeeOther, "/account?"+url.Values{"did": {res.did}}.Encode())
}

// accountAction checks an account page form: the CSRF token, and that its
// account is signed in on this browser.
func (h *Handlers) accountAction(c echo.Context) (string, *accountView, []accountView, bool, error) {
	dev, ok, err := h.formGuard(c)
	if !ok {
		return "", nil, nil, false, err
	}
	did := c.Request().PostForm.Get("did")
	cur, others, err := h.accountFor(c.Request().Context(), dev, did)
	if err != nil {
		return "", nil, nil, false, err
	}
	if cur == nil || did == "" {
		return "", nil, nil, false, c.Redirect(http.StatusSeeOther, "/account")
	}
	return dev, cur, others, true, nil
}

func accountURL(did, notice string) string {
	return "/account?" + url.Values{"did": {did}, "notice": {notice}}.Encode()
}

// accountSignOut signs the account out of this browser.
func (h *Handlers) accountSignOut(c echo.Context) error {
	dev, cur, _, ok, err := h.accountAction(c)
	if !ok {
		return err
	}
	if err := h.PDS.DeviceSignOut(c.Request().Context(), syntax.DID(cur.DID), devHash(dev)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/account")
}

// accountRevokeApp ends one of the account's OAuth sessions.
func (h *Handlers) accountRevokeApp(c echo.Context) error {
	_, cur, _, ok, err := h.accountAction(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	id := c.Request().PostForm.Get("session")
	s, err := h.PDS.OAuth.Session(ctx, syntax.DID(cur.DID), id)
	if errors.Is(err, oauthproj.ErrNotFound) {
		return c.Redirect(http.StatusSeeOther, accountURL(cur.DID, "That app was already disconnected."))
	}
	if err != nil {
		return err
	}
	if err := h.PDS.RevokeOAuthSession(ctx, s.DID, s.ID, "revoked on the account page"); err != nil {
		return err
	}
	h.logger.Info("oauth: session revoked on the account page", "did", s.DID, "client_id", s.ClientID)
	return c.Redirect(http.StatusSeeOther, accountURL(cur.DID, "The app was disconnected: its access ended."))
}

// accountSignOutDevice signs the account out of another browser.
func (h *Handlers) accountSignOutDevice(c echo.Context) error {
	_, cur, _, ok, err := h.accountAction(c)
	if !ok {
		return err
	}
	dev := c.Request().PostForm.Get("device")
	if len(dev) != 64 {
		return c.Redirect(http.StatusSeeOther, accountURL(cur.DID, ""))
	}
	if err := h.PDS.DeviceSignOut(c.Request().Context(), syntax.DID(cur.DID), dev); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, accountURL(cur.DID, "That browser was signed out."))
}

// accountCreateAppPassword creates an app password and shows it once.
func (h *Handlers) accountCreateAppPassword(c echo.Context) error {
	dev, cur, others, ok, err := h.accountAction(c)
	if !ok {
		return err
	}
	f := c.Request().PostForm
	ap, err := h.PDS.CreateAppPassword(c.Request().Context(), syntax.DID(cur.DID), f.Get("name"), f.Get("privileged") != "")
	if err != nil {
		var pe *pds.Error
		if errors.As(err, &pe) {
			return c.Redirect(http.StatusSeeOther, accountURL(cur.DID, pe.Msg))
		}
		return err
	}
	return h.renderAccount(c, dev, cur, others, ap, "")
}

// accountRevokeAppPassword revokes an app password.
func (h *Handlers) accountRevokeAppPassword(c echo.Context) error {
	_, cur, _, ok, err := h.accountAction(c)
	if !ok {
		return err
	}
	name := c.Request().PostForm.Get("name")
	if err := h.PDS.RevokeAppPassword(c.Request().Context(), syntax.DID(cur.DID), name); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, accountURL(cur.DID, "The app password “"+name+"” was revoked."))
}
