package proxytest

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// Env is the real server (apitest) with service proxying on, a real PLC
// directory, a stand-in AppView (the configured one) and a stand-in
// moderation service, each with its DID in that directory. Accounts made
// with createAccount get their DID documents there too, so the stand-ins can
// verify the tokens the server signs for them.
type Env struct {
	*apitest.Env
	T       testing.TB
	PLCURL  string
	AppView *Service
	Mod     *Service
	Config  *proxy.Config
	// Logs is what the server logged (text, debug level and up).
	Logs *eventlogtest.SyncBuffer
	n    int
}

// NewEnv starts everything; configure, if set, adjusts the proxy's
// configuration first (SSRF protection starts off: the stand-ins are on
// 127.0.0.1).
func NewEnv(t testing.TB, configure func(*proxy.Config)) *Env {
	t.Helper()
	plcSrv := plcserver.Start(t)
	e := &Env{T: t, PLCURL: plcSrv.URL, Logs: &eventlogtest.SyncBuffer{}}
	e.AppView = Start(t, plcSrv.URL, nil)
	e.Mod = Start(t, plcSrv.URL, nil)
	e.Config = &proxy.Config{
		AppView:               &proxy.Service{DID: e.AppView.DID, URL: e.AppView.URL},
		ModService:            &proxy.Service{DID: e.Mod.DID, URL: e.Mod.URL},
		PLC:                   &plc.Client{URL: plcSrv.URL},
		DisableSSRFProtection: true,
	}
	if configure != nil {
		configure(e.Config)
	}
	e.Env = apitest.New(t, func(o *api.Config) {
		o.Proxy = e.Config
		o.Logger = slog.New(slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.Env.PDS.PLC.URL = plcSrv.URL
	return e
}

// User is an account made through createAccount.
type User struct {
	DID      syntax.DID
	Handle   string
	Password string
	Token    string // full-access session
}

// CreateUser creates an account with createAccount (its DID goes to the PLC
// directory with its repo key) and returns it with a full session.
func (e *Env) CreateUser() *User {
	e.T.Helper()
	e.n++
	code := fmt.Sprintf("proxytest-invite-%d", e.n)
	e.CreateInvite(code, 1)
	u := &User{Handle: fmt.Sprintf("user%d.test", e.n), Password: fmt.Sprintf("password-%d-long", e.n)}
	r := e.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "",
		map[string]any{"handle": u.Handle, "email": fmt.Sprintf("u%d@example.com", e.n), "password": u.Password, "inviteCode": code})
	if r.Status != 200 {
		e.T.Fatalf("createAccount: %d %s", r.Status, r.Body)
	}
	var out struct {
		DID       syntax.DID `json:"did"`
		AccessJwt string     `json:"accessJwt"`
	}
	r.JSON(e.T, &out)
	u.DID, u.Token = out.DID, out.AccessJwt
	return u
}

// AppPassword creates an app password for u and returns a session opened
// with it.
func (e *Env) AppPassword(u *User, name string, privileged bool) string {
	e.T.Helper()
	r := e.Do("POST", "/xrpc/com.atproto.server.createAppPassword", nil, u.Token, map[string]any{"name": name, "privileged": privileged})
	if r.Status != 200 {
		e.T.Fatalf("createAppPassword: %d %s", r.Status, r.Body)
	}
	var ap struct {
		Password string `json:"password"`
	}
	r.JSON(e.T, &ap)
	r = e.Do("POST", "/xrpc/com.atproto.server.createSession", nil, "", map[string]any{"identifier": u.Handle, "password": ap.Password})
	if r.Status != 200 {
		e.T.Fatalf("createSession with app password: %d %s", r.Status, r.Body)
	}
	var s struct {
		AccessJwt string `json:"accessJwt"`
	}
	r.JSON(e.T, &s)
	return s.AccessJwt
}
