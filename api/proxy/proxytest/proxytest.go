// Package proxytest runs stand-in atproto services (an AppView, a labeler,
// a chat service) for tests of service proxying: an HTTP server on
// 127.0.0.1 with a did:plc registered in a real PLC directory, whose DID
// document lists the server under the service ids bsky_appview,
// atproto_labeler and bsky_chat and serves it at /.well-known/did.json
// too (for did:web tests). Every XRPC call it receives must carry an
// inter-service token that indigo's atproto/auth ServiceAuthValidator
// accepts, resolving the issuer through the same PLC directory: right
// audience, lxm equal to the called method, signed by the issuer's
// current key, unexpired. A call that fails fails the test.
package proxytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/identity/plc"
)

// Service ids the stand-in's DID document lists, all pointing at it.
var ServiceIDs = map[string]string{
	"bsky_appview":    "BskyAppView",
	"atproto_labeler": "AtprotoLabeler",
	"bsky_chat":       "BskyChatService",
}

// Call is one XRPC call the stand-in received.
type Call struct {
	NSID   string
	Method string
	Query  url.Values
	Header http.Header
	Body   []byte
	// Issuer is the verified iss of its service-auth token.
	Issuer syntax.DID
	// Token is the raw token.
	Token string
}

// Handler answers a verified call.
type Handler func(w http.ResponseWriter, r *http.Request, c *Call)

// Options configure a stand-in.
type Options struct {
	// TLS serves https (with a certificate nobody trusts).
	TLS bool
}

// Service is a running stand-in.
type Service struct {
	t   testing.TB
	DID syntax.DID
	// URL is its base URL; the DID document's endpoints.
	URL string
	// Key is its own atproto signing key (in its DID document).
	Key      atcrypto.PrivateKeyExportable
	plcURL   string
	srv      *httptest.Server
	mu       sync.Mutex
	audience string
	calls    []Call
	handlers map[string]Handler
}

// Start runs a stand-in and registers its DID in the PLC directory at
// plcURL. Calls must be addressed to its bare DID until ExpectAudience
// says otherwise. Methods without a handler answer {"ok":true}.
func Start(t testing.TB, plcURL string, opts *Options) *Service {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	s := &Service{t: t, plcURL: plcURL, handlers: map[string]Handler{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/xrpc/", s.serveXRPC)
	mux.HandleFunc("/.well-known/did.json", s.serveDIDDoc)
	if opts.TLS {
		s.srv = httptest.NewTLSServer(mux)
	} else {
		s.srv = httptest.NewServer(mux)
	}
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	s.Key = key
	s.DID = Register(t, plcURL, key, s.URL)
	s.audience = s.DID.String()
	return s
}

// Register creates a did:plc in the directory at plcURL whose atproto key
// is key's and whose services (ServiceIDs) all point at endpoint.
func Register(t testing.TB, plcURL string, key atcrypto.PrivateKey, endpoint string) syntax.DID {
	t.Helper()
	rot, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	rotPub, _ := rot.PublicKey()
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	op := &plc.Op{Type: plc.TypeOperation, RotationKeys: []string{rotPub.DIDKey()},
		VerificationMethods: map[string]string{plc.VerificationMethodAtproto: pub.DIDKey()},
		AlsoKnownAs:         []string{}, Services: map[string]plc.Service{}}
	for id, typ := range ServiceIDs {
		op.Services[id] = plc.Service{Type: typ, Endpoint: endpoint}
	}
	if err := op.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := op.Sign(rot); err != nil {
		t.Fatal(err)
	}
	did, err := plc.GenesisDID(op)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&plc.Client{URL: plcURL}).Submit(context.Background(), did, op); err != nil {
		t.Fatal(err)
	}
	return did
}

// Ref is the stand-in's DID#id service reference.
func (s *Service) Ref(id string) string { return s.DID.String() + "#" + id }

// ExpectAudience sets the aud inbound tokens must carry from now on.
func (s *Service) ExpectAudience(aud string) {
	s.mu.Lock()
	s.audience = aud
	s.mu.Unlock()
}

// Handle sets the handler of method nsid.
func (s *Service) Handle(nsid string, h Handler) {
	s.mu.Lock()
	s.handlers[nsid] = h
	s.mu.Unlock()
}

// Calls returns the calls received so far.
func (s *Service) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call{}, s.calls...)
}

// Verify checks a service-auth token for method nsid as the stand-in does
// every inbound one (indigo's ServiceAuthValidator with the expected
// audience, the issuer's key resolved through the PLC directory), and
// returns its issuer.
func (s *Service) Verify(ctx context.Context, token string, nsid syntax.NSID) (syntax.DID, error) {
	s.mu.Lock()
	aud := s.audience
	s.mu.Unlock()
	v := &auth.ServiceAuthValidator{Audience: aud,
		Dir: &identity.BaseDirectory{PLCURL: s.plcURL, SkipHandleVerification: true}}
	return v.Validate(ctx, token, &nsid)
}

func (s *Service) serveXRPC(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimPrefix(r.URL.Path, "/xrpc/")
	nsid, err := syntax.ParseNSID(raw)
	if err != nil {
		s.t.Errorf("stand-in %s: call to bad path %q", s.DID, r.URL.Path)
		http.Error(w, "bad path", http.StatusNotFound)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		s.t.Errorf("stand-in %s: %s called without a bearer token", s.DID, nsid)
		writeError(w, http.StatusUnauthorized, "AuthMissing", "no token")
		return
	}
	iss, err := s.Verify(r.Context(), tok, nsid)
	if err != nil {
		s.t.Errorf("stand-in %s: %s: service auth refused: %v", s.DID, nsid, err)
		writeError(w, http.StatusUnauthorized, "BadJwt", err.Error())
		return
	}
	body, _ := io.ReadAll(r.Body)
	c := Call{NSID: raw, Method: r.Method, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body, Issuer: iss, Token: tok}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	h := s.handlers[raw]
	s.mu.Unlock()
	if h == nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
		return
	}
	h(w, r, &c)
}

// serveDIDDoc serves the stand-in's DID document as it stands in the
// PLC directory, re-issued as that of the did:web of the Host it was
// asked at (did:web:localhost%3APORT).
func (s *Service) serveDIDDoc(w http.ResponseWriter, r *http.Request) {
	doc, err := (&plc.Client{URL: s.plcURL}).Resolve(r.Context(), s.DID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	web := syntax.DID("did:web:" + strings.ReplaceAll(r.Host, ":", "%3A"))
	out := identity.DIDDocument{DID: web, AlsoKnownAs: doc.AlsoKnownAs, Service: doc.Service}
	for _, vm := range doc.VerificationMethod {
		vm.ID = strings.Replace(vm.ID, s.DID.String(), web.String(), 1)
		vm.Controller = web.String()
		out.VerificationMethod = append(out.VerificationMethod, vm)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// WebDID is the did:web naming the stand-in through host localhost (its
// document is served at /.well-known/did.json).
func (s *Service) WebDID() syntax.DID {
	u, _ := url.Parse(s.URL)
	return syntax.DID("did:web:localhost%3A" + u.Port())
}

func writeError(w http.ResponseWriter, status int, name, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": name, "message": msg})
}

// JSON writes v as a JSON answer with extra headers (pairs of name,
// value).
func JSON(w http.ResponseWriter, v any, headers ...string) {
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		panic(fmt.Sprintf("proxytest: %v", err))
	}
}
