// Package apitest runs the real API server on a real listener over a real
// log and projection store in temp dirs, for end-to-end tests of handlers.
package apitest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	pdsidentity "github.com/pdslog/pdslog/api/pds/identity"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/eventlog/blobstore/disk"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
	"github.com/pdslog/pdslog/projections/blocks"
	"github.com/pdslog/pdslog/projections/records"
	"github.com/pdslog/pdslog/projections/repos"
)

// Service is the test server's description.
var Service = pds.Service{Hostname: "localhost", Port: 2583, HandleDomains: []string{".test"}, InviteRequired: true}

// AdminPassword is the test server's admin password.
const AdminPassword = "apitest-admin"

// Env is a running server and everything behind it. The fields beside PDS
// are shortcuts to its parts.
type Env struct {
	T        testing.TB
	PDS      *pds.PDS
	Log      *eventlog.Log
	Store    *projections.Store
	Runner   *projections.Runner
	Accounts *accounts.Projection
	Records  *records.Projection
	Blocks   *blocks.Projection
	Repos    *repos.Projection
	Builder  *commit.Builder
	Server   *httptest.Server
	API      *api.Server // the server behind Server
	// Blobs: the index, a real disk store in a temp dir and the upload
	// temp dir.
	BlobIndex   *blobs.Projection
	BlobStore   blobstore.Store
	BlobTempDir string
	// Clock is what the log, sessions and blob graces read as now: advance
	// it to pass time-based thresholds (token expiry, blob graces).
	Clock *Clock
	// Directory resolves DIDs for the server: CreateAccount's accounts,
	// then a real PLC directory once StartPLC runs one.
	Directory *Directory
	n         int
}

// BlobMaxSize is the test server's upload limit (small, so limit tests are
// fast).
const BlobMaxSize = 256 << 10

// Clock is the wall clock shifted by an offset tests advance.
type Clock struct {
	mu  sync.Mutex
	off time.Duration
}

// Now is the shifted time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// New starts a server. Each configure func may change the server's
// settings before it is built (e.g. firehose limits).
func New(t testing.TB, configure ...func(*api.Config)) *Env {
	t.Helper()
	return NewOnFS(t, nil, configure...)
}

// NewOnFS is New with the event log on fs (e.g. a fault-injecting
// filesystem); nil means the OS filesystem.
func NewOnFS(t testing.TB, fs vfs.FS, configure ...func(*api.Config)) *Env {
	t.Helper()
	return NewPDS(t, func(o *pds.Options) { o.FS = fs }, configure...)
}

// NewPDS is New with the write side's options changed by po first (mail,
// the log's filesystem).
func NewPDS(t testing.TB, po func(*pds.Options), configure ...func(*api.Config)) *Env {
	t.Helper()
	clock := &Clock{}
	bs, err := disk.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rot, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	dir := &Directory{}
	opts := &pds.Options{Command: "apitest", Logger: slog.New(slog.DiscardHandler), Now: clock.Now,
		Service: Service, JWTSecret: []byte("apitest-jwt-secret"), RotationKey: rot, BlobStore: bs, Directory: dir}
	if po != nil {
		po(opts)
	}
	p, err := pds.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	env := &Env{T: t, PDS: p, Log: p.Log, Store: p.Store, Runner: p.Runner, Accounts: p.Accounts, Records: p.Records, Blocks: p.Blocks,
		Repos: p.Repos, Builder: p.Builder, BlobIndex: p.Blobs, BlobStore: bs, BlobTempDir: t.TempDir(), Clock: clock, Directory: dir}
	cfg := api.Config{AdminPassword: AdminPassword, RateLimits: true, BlobTempDir: env.BlobTempDir, BlobMaxSize: BlobMaxSize,
		Logger: slog.New(slog.DiscardHandler), Version: "test"}
	for _, f := range configure {
		f(&cfg)
	}
	srv := api.New(p, cfg)
	env.API = srv
	env.Server = httptest.NewServer(srv.Handler())
	t.Cleanup(env.Server.Close)
	// Firehose subscribers read the log: end them before it closes.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.CloseStreams(ctx)
	})
	return env
}

// Account is a test account.
type Account struct {
	DID      syntax.DID
	Handle   syntax.Handle
	Password string
	Token    string // access token
	Refresh  string // refresh token
	Key      atcrypto.PrivateKeyExportable
}

// CreateAccount appends a new account with its key and empty first commit.
func (e *Env) CreateAccount() *Account {
	e.T.Helper()
	e.n++
	ctx := context.Background()
	did := syntax.DID(fmt.Sprintf("did:plc:apitest%017d", e.n))
	handle := syntax.Handle(fmt.Sprintf("user%d.test", e.n))
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		e.T.Fatal(err)
	}
	password := fmt.Sprintf("password-%d", e.n)
	hash, err := auth.HashPassword(password)
	if err != nil {
		e.T.Fatal(err)
	}
	genesis, err := e.Builder.Build(ctx, commit.Repo{DID: did, Key: key, Blocks: e.Blocks.Source(did)}, nil)
	if err != nil {
		e.T.Fatal(err)
	}
	sync, err := commit.SyncAfter(genesis.Event)
	if err != nil {
		e.T.Fatal(err)
	}
	// The same events, in the same order, as createAccount appends.
	seq, err := e.Log.Append(ctx,
		commit.SigningKeyEvent(did, key),
		events.Must(did, &events.AccountCreated{Handle: handle, PasswordHash: hash, Email: fmt.Sprintf("user%d@example.com", e.n), CreatedAt: time.Now().UTC().Format(time.RFC3339)}),
		&eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: handle}},
		&eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: true}},
		genesis.Event,
		sync,
	)
	if err != nil {
		e.T.Fatal(err)
	}
	if err := e.Runner.CatchUp(ctx, seq); err != nil {
		e.T.Fatal(err)
	}
	acct, err := e.Accounts.Get(ctx, did)
	if err != nil {
		e.T.Fatal(err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		e.T.Fatal(err)
	}
	e.Directory.Register(did, handle, pub, Service.PublicURL())
	sess, err := e.PDS.Login(ctx, acct, "", false)
	if err != nil {
		e.T.Fatal(err)
	}
	return &Account{DID: did, Handle: handle, Password: password, Token: sess.AccessJwt, Refresh: sess.RefreshJwt, Key: key}
}

// Renew gives a a new session at the env's clock (after the clock moved
// past its tokens' lifetime).
func (e *Env) Renew(a *Account) {
	e.T.Helper()
	acct, err := e.Accounts.Get(context.Background(), a.DID)
	if err != nil {
		e.T.Fatal(err)
	}
	sess, err := e.PDS.Login(context.Background(), acct, "", false)
	if err != nil {
		e.T.Fatal(err)
	}
	a.Token, a.Refresh = sess.AccessJwt, sess.RefreshJwt
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// ErrorName returns the XRPC error name of an error response.
func (r *Response) ErrorName() string {
	var b xrpc.Body
	_ = json.Unmarshal(r.Body, &b)
	return b.Error
}

// Message returns the XRPC error message of an error response.
func (r *Response) Message() string {
	var b xrpc.Body
	_ = json.Unmarshal(r.Body, &b)
	return b.Message
}

// Do sends a request; body may be nil, a []byte or a value to JSON-encode.
func (e *Env) Do(method, path string, query url.Values, token string, body any) *Response {
	e.T.Helper()
	return e.Request(method, path, query, token, body)
}

// Request is Do with extra headers (pairs of name, value).
func (e *Env) Request(method, path string, query url.Values, token string, body any, headers ...string) *Response {
	e.T.Helper()
	resp := e.Send(method, path, query, token, body, headers...)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.T.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return &Response{Status: resp.StatusCode, Body: out, Header: resp.Header}
}

// Send is Request returning the unread HTTP response; the caller closes
// its body. A token starting with "Basic " is sent as is, others as a
// Bearer token.
func (e *Env) Send(method, path string, query url.Values, token string, body any, headers ...string) *http.Response {
	e.T.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		rd, ct = bytes.NewReader(buf), "application/json"
	}
	u := e.Server.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	switch {
	case strings.HasPrefix(token, "Basic "):
		req.Header.Set("Authorization", token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	return resp
}

// StartPLC runs a real PLC directory for this env's signups.
func (e *Env) StartPLC() {
	e.T.Helper()
	srv := plcserver.Start(e.T)
	e.PDS.PLC.URL = srv.URL
	e.Directory.setReal(&pdsidentity.Resolver{PLC: e.PDS.PLC})
}

// CreateInvite appends an invite code with n uses.
func (e *Env) CreateInvite(code string, n int) {
	e.T.Helper()
	seq, err := e.Log.Append(context.Background(), events.Must(Service.DID(),
		&events.InviteCreated{Code: code, Available: n, CreatedBy: "admin", CreatedAt: time.Now().UTC().Format(time.RFC3339)}))
	if err != nil {
		e.T.Fatal(err)
	}
	if err := e.Runner.CatchUp(context.Background(), seq); err != nil {
		e.T.Fatal(err)
	}
}

// AdminAuth is the Authorization header value for admin methods.
func AdminAuth(password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+password))
}
