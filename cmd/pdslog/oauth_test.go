package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/chromedp/chromedp"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/api/oauth/oauthtest"
	"github.com/pdslog/pdslog/api/oauth/tsclient"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/testenv"
)

// oauthServe is `pdslog serve` as https://pds.example.com: serve on
// loopback behind a TLS front (as a reverse proxy would be), with a real
// PLC directory, in a world of test hosts.
type oauthServe struct {
	t        *testing.T
	w        *oauthtest.World
	dir      string
	plc      string
	addr     string
	stop     func()
	mu       sync.Mutex
	invite   string
	adminPW  string
	startArg []string
}

func startOAuthServe(t *testing.T) *oauthServe {
	t.Helper()
	s := &oauthServe{t: t, w: oauthtest.NewWorld(), dir: t.TempDir(), plc: plcserver.Start(t).URL, adminPW: "oauth-admin"}
	front := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		s.mu.Lock()
		addr := s.addr
		s.mu.Unlock()
		r.SetURL(&url.URL{Scheme: "http", Host: addr})
		r.SetXForwarded()
	}}
	s.w.Serve(t, oauthtest.PDSHost, front)
	s.start()
	return s
}

func (s *oauthServe) start() {
	s.t.Helper()
	addr, _, stop := startServeWith(s.t, func(c *serveCommand) { c.oauth.clientHTTP = s.w.Client() },
		"--data-dir", s.dir, "--plc-url", s.plc, "--hostname", oauthtest.PDSHost, "--bind", "127.0.0.1",
		"--jwt-secret", "oauth-serve-secret", "--admin-password", s.adminPW, "--oauth-provider-name", "Example PDS")
	s.mu.Lock()
	s.addr, s.stop = addr, stop
	s.mu.Unlock()
}

// xrpc calls serve directly (plain HTTP on loopback).
func (s *oauthServe) xrpc(method, nsid string, auth string, body any, out any) int {
	s.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "http://"+s.addr+"/xrpc/"+nsid, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// createAccount signs up handle through createAccount (with an invite the
// admin makes): a did:plc in the real PLC directory, hosted at
// https://pds.example.com.
func (s *oauthServe) createAccount(handle, password string) syntax.DID {
	s.t.Helper()
	var inv struct{ Code string }
	req, _ := http.NewRequest("POST", "http://"+s.addr+"/xrpc/com.atproto.server.createInviteCode", strings.NewReader(`{"useCount":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", s.adminPW)
	if st := doJSON(s.t, req, &inv); st != 200 {
		s.t.Fatalf("createInviteCode: %d", st)
	}
	var out struct{ DID string }
	if st := s.xrpc("POST", "com.atproto.server.createAccount", "", map[string]any{"handle": handle, "email": strings.Split(handle, ".")[0] + "@example.com",
		"password": password, "inviteCode": inv.Code}, &out); st != 200 {
		s.t.Fatalf("createAccount %s: %d", handle, st)
	}
	return syntax.DID(out.DID)
}

// records lists did's posts.
func (s *oauthServe) posts(did syntax.DID) []string {
	s.t.Helper()
	var out struct{ Records []struct{ URI string } }
	q := url.Values{"repo": {did.String()}, "collection": {"app.bsky.feed.post"}}
	s.xrpc("GET", "com.atproto.repo.listRecords?"+q.Encode(), "", nil, &out)
	var uris []string
	for _, r := range out.Records {
		uris = append(uris, r.URI)
	}
	return uris
}

// browser is headless Chromium (Debian's) resolving the world's hosts to
// their listeners; the test CA is not installed, so certificate errors are
// ignored (the hosts are the test's own).
func browser(t *testing.T, w *oauthtest.World, hosts ...string) (context.Context, func()) {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		testenv.Skip(t, "Debian's chromium is not installed (apt-get install chromium): %v", err)
	}
	var rules []string
	for _, h := range hosts {
		rules = append(rules, "MAP "+h+":443 "+w.Addr(h))
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", strings.Join(rules, ", ")), chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	if err := chromedp.Do(ctx); err != nil {
		cancelT()
		cancelB()
		cancelA()
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx, func() { cancelT(); cancelB(); cancelA() }
}

// shots saves screenshots of the current page at desktop and phone
// widths, into PDSLOG_SCREENSHOTS (or the test's temp dir).
type shots struct {
	t   *testing.T
	dir string
}

func newShots(t *testing.T) *shots {
	dir := os.Getenv("PDSLOG_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &shots{t: t, dir: dir}
}

func (s *shots) take(ctx context.Context, name string) {
	s.t.Helper()
	for _, v := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{}
		if v.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(v.w, v.h, opts...), chromedp.Sleep(100*time.Millisecond)); err != nil {
			s.t.Fatalf("viewport %s: %v", name, err)
		}
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			s.t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, name+"-"+v.suffix+".png"), buf, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		s.t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, body)
	}
}

// A real browser (Debian's Chromium, through chromedp) signs in to
// `pdslog serve` for a web app built on indigo's OAuth client: the sign-in
// page (a wrong password first), the consent page, the redirect, the code
// exchange and a post with the DPoP-bound token; a forced refresh and
// another post; the choose-account page and a denied consent; the account
// page, where the app is disconnected, after which the app is refused;
// the error page; signing out. Then serve stops, `pdslog replay` rebuilds
// the projections, serve starts again: the disconnected session stays
// refused and a live one still works. Every page is captured at desktop
// and phone widths.
func TestServeOAuthBrowser(t *testing.T) {
	testenv.Slow(t, "a real Chromium, the real PLC directory and pdslog serve")
	s := startOAuthServe(t)
	defer func() { s.stop() }()
	did := s.createAccount("alice.pds.example.com", "alice-password-1")
	app := oauthtest.NewApp(t, s.w, oauthtest.AppOptions{Name: "Test App"})
	app.Know(did, "alice.pds.example.com")
	ctx, done := browser(t, s.w, oauthtest.PDSHost, "app.example.com")
	defer done()
	sh := newShots(t)

	// Sign in (a wrong password first), consent, back to the app.
	do(t, ctx, "open the app's login", chromedp.Navigate("https://app.example.com/login?id="+did.String()),
		chromedp.WaitVisible(chromedp.CSS("#password")))
	sh.take(ctx, "sign-in")
	do(t, ctx, "wrong password", chromedp.SendKeys(chromedp.CSS("#password"), "not-the-password"),
		chromedp.Click(chromedp.CSS(`button[value="sign-in"]`)), chromedp.WaitVisible(chromedp.CSS(".alert-error")))
	if msg := text(t, ctx, ".alert-error"); !strings.Contains(msg, "Wrong handle") {
		t.Fatalf("wrong password page says %q", msg)
	}
	sh.take(ctx, "sign-in-error")
	do(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#password"), "alice-password-1"),
		chromedp.Click(chromedp.CSS(`button[value="sign-in"]`)), chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)))
	if h1 := text(t, ctx, "h1"); !strings.Contains(h1, "Allow access") {
		t.Fatalf("consent page h1 %q", h1)
	}
	if body := text(t, ctx, "main"); !strings.Contains(body, "Test App") || !strings.Contains(body, "app.example.com") || !strings.Contains(body, "@alice.pds.example.com") {
		t.Fatalf("consent page: %q", body)
	}
	sh.take(ctx, "consent")
	do(t, ctx, "authorize", chromedp.Click(chromedp.CSS(`button[value="allow"]`)), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got, e := text(t, ctx, "#result"), text(t, ctx, "#error"); !strings.Contains(got, "posted at://"+did.String()) || e != "" {
		t.Fatalf("app after authorizing: %q (error %q)", got, e)
	}
	if n := len(s.posts(did)); n != 1 {
		t.Fatalf("%d posts in the repo, want 1", n)
	}

	// A forced refresh, then a write with the new token.
	do(t, ctx, "refresh", chromedp.Navigate("https://app.example.com/refresh"), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got, e := text(t, ctx, "#result"), text(t, ctx, "#error"); !strings.HasPrefix(got, "refreshed; posted at://") || e != "" {
		t.Fatalf("app after refresh: %q (error %q)", got, e)
	}

	// Another sign-in: the browser remembers the account (choose page);
	// this time the consent is denied.
	do(t, ctx, "login again", chromedp.Navigate("https://app.example.com/login"), chromedp.WaitVisible(chromedp.CSS(".account-row")))
	sh.take(ctx, "choose")
	do(t, ctx, "choose the account", chromedp.Click(chromedp.CSS(".account-row")), chromedp.WaitVisible(chromedp.CSS(`button[value="deny"]`)),
		chromedp.Click(chromedp.CSS(`button[value="deny"]`)), chromedp.WaitVisible(chromedp.CSS("#error")))
	if e := text(t, ctx, "#error"); !strings.Contains(e, "access_denied") {
		t.Fatalf("app after a denial: %q", e)
	}

	// A second app stays connected across the restart below.
	other := oauthtest.NewApp(t, s.w, oauthtest.AppOptions{Host: "other.example.com", Name: "Other App"})
	other.Know(did, "alice.pds.example.com")
	ctx2, done2 := browser(t, s.w, oauthtest.PDSHost, "app.example.com", "other.example.com")
	defer done2()
	do(t, ctx2, "other app: sign in and authorize", chromedp.Navigate("https://other.example.com/login?id="+did.String()),
		chromedp.WaitVisible(chromedp.CSS("#password")), chromedp.SendKeys(chromedp.CSS("#password"), "alice-password-1"),
		chromedp.Click(chromedp.CSS(`button[value="sign-in"]`)), chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)), chromedp.WaitVisible(chromedp.CSS("#result")))

	// The account page: disconnect the first app; it is refused.
	do(t, ctx, "account page", chromedp.Navigate("https://"+oauthtest.PDSHost+"/account"), chromedp.WaitVisible(chromedp.CSS("#apps-title")))
	sh.take(ctx, "account")
	do(t, ctx, "disconnect Test App", chromedp.Click(`//li[contains(., "Test App")]//button[contains(., "Disconnect")]`),
		chromedp.WaitVisible(chromedp.CSS(".alert-ok")))
	sh.take(ctx, "account-disconnected")
	do(t, ctx, "app after the disconnection", chromedp.Navigate("https://app.example.com/post"), chromedp.WaitVisible(chromedp.CSS("#error")))
	if e := text(t, ctx, "#error"); !strings.Contains(e, "invalid_grant") && !strings.Contains(e, "invalid_token") {
		t.Fatalf("a disconnected app wrote: %q", e)
	}

	// The error page, and signing out (the account page's sign-in).
	do(t, ctx, "error page", chromedp.Navigate("https://"+oauthtest.PDSHost+"/oauth/authorize?client_id=x"), chromedp.WaitVisible(chromedp.CSS(".alert-error")))
	sh.take(ctx, "error")
	do(t, ctx, "sign out", chromedp.Navigate("https://"+oauthtest.PDSHost+"/account"), chromedp.WaitVisible(chromedp.CSS("#apps-title")),
		chromedp.Click(`//button[contains(., "Sign out of this browser")]`), chromedp.WaitVisible(chromedp.CSS("#password")))
	sh.take(ctx, "account-sign-in")

	// Restart through replay: the revocation holds, the other app works.
	s.stop()
	if code, out, errOut := runCmd(t, t.Context(), "replay", "--data-dir", s.dir); code != exitOK {
		t.Fatalf("replay: %d\n%s\n%s", code, out, errOut)
	}
	s.start()
	do(t, ctx, "disconnected app after restart", chromedp.Navigate("https://app.example.com/refresh"), chromedp.WaitVisible(chromedp.CSS("#error")))
	if e := text(t, ctx, "#error"); !strings.Contains(e, "invalid_grant") {
		t.Fatalf("the disconnected app refreshed after a restart: %q", e)
	}
	do(t, ctx2, "other app after restart", chromedp.Navigate("https://other.example.com/refresh"), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got, e := text(t, ctx2, "#result"), text(t, ctx2, "#error"); !strings.HasPrefix(got, "refreshed; posted") || e != "" {
		t.Fatalf("the connected app after a restart: %q (error %q)", got, e)
	}
}

// The official TypeScript client, @atproto/oauth-client-node on the
// Node.js 22 of the node npm package (api/oauth/tsclient/client.mjs), signs
// in to `pdslog serve` (a local issuer, http://localhost:PORT, with a real
// PLC directory) as a loopback client through the pages, writes with its
// DPoP-bound token, is refused an account-management method, refreshes and
// signs out; the log then holds the session's creation, refresh and
// revocation, and no session is left.
func TestServeOAuthTypeScript(t *testing.T) {
	testenv.Slow(t, "@atproto/oauth-client-node under Node.js 22, the real PLC directory and pdslog serve")
	plcURL := plcserver.Start(t).URL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dir := t.TempDir()
	s := &oauthServe{t: t, dir: dir, plc: plcURL, adminPW: "ts-admin"}
	addr, _, stop := startServe(t, "--data-dir", dir, "--plc-url", plcURL, "--port", port, "--jwt-secret", "ts-client-test-secret", "--admin-password", s.adminPW)
	s.addr = addr
	running := true
	defer func() {
		if running {
			stop()
		}
	}()
	did := s.createAccount("alice.test", "alice-password-1")
	steps := tsclient.Run(t, "http://localhost:"+port, plcURL, "alice.test", "alice-password-1")
	var names []string
	for _, st := range steps {
		names = append(names, st.Name)
	}
	if !slices.Equal(names, tsclient.Steps) {
		t.Fatalf("steps run:\n  %v\nwant:\n  %v", names, tsclient.Steps)
	}
	var sum struct {
		DID     string   `json:"did"`
		Records []string `json:"records"`
	}
	if err := steps[len(steps)-1].Decode(&sum); err != nil {
		t.Fatal(err)
	}
	if sum.DID != did.String() || len(sum.Records) != 2 {
		t.Fatalf("summary: %+v", sum)
	}
	if got := s.posts(did); len(got) != 2 {
		t.Fatalf("posts in the repo: %v", got)
	}
	stop()
	running = false
	d, err := pds.Open(dir, &pds.Options{Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.CatchUp(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if ss, err := d.OAuth.Sessions(t.Context(), did); err != nil || len(ss) != 0 {
		t.Fatalf("sessions after sign-out: %+v %v", ss, err)
	}
	seen := map[string]bool{}
	it, err := d.Log.IterRepo(t.Context(), did, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for it.Next() {
		if ev := it.Event(); ev.Kind == eventlog.KindPrivate {
			seen[ev.Private.Type] = true
		}
	}
	for _, typ := range []string{events.TypeOAuthDeviceSignIn, events.TypeOAuthCode, events.TypeOAuthSession, events.TypeOAuthRefreshed, events.TypeOAuthRevoked} {
		if !seen[typ] {
			t.Errorf("no %s event of %s in the log (saw %v)", typ, did, seen)
		}
	}
}
