package identity_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	pdsidentity "github.com/pdslog/pdslog/api/pds/identity"
	"github.com/pdslog/pdslog/api/pds/identity/identitytest"
	"github.com/pdslog/pdslog/api/proxy"
)

// TestResolveForeignHandles: resolveHandle through HTTP answers for
// handles hosted elsewhere as the spec and the reference say: by the
// handle's DNS TXT record (a real DNS server on loopback), by its
// https://HANDLE/.well-known/atproto-did (a real HTTPS server the DNS
// server points at), then by the AppView (a real HTTP server standing in
// for it); HandleNotFound when none knows it, and at once, asking nobody,
// for a handle under this server's own domains that no account has.
func TestResolveForeignHandles(t *testing.T) {
	w := identitytest.StartWorld(t)
	w.DNS.SetTXT("dns-only.elsewhere.social", "did=did:plc:dnsonly0000000000000000")
	w.Web.Set("web-only.elsewhere.social", "did:plc:webonly0000000000000000")
	var appViewAsked atomic.Int32
	appView := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		appViewAsked.Add(1)
		if r.URL.Path != "/xrpc/com.atproto.identity.resolveHandle" || r.Header.Get("Authorization") != "" {
			http.Error(rw, "unexpected", http.StatusTeapot)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("handle") == "appview-only.elsewhere.social" {
			_ = json.NewEncoder(rw).Encode(map[string]string{"did": "did:plc:appviewonly00000000000000"})
			return
		}
		rw.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(rw).Encode(map[string]string{"error": "InvalidRequest", "message": "Unable to resolve handle"})
	}))
	defer appView.Close()
	env := apitest.New(t, func(c *api.Config) {
		c.Proxy = &proxy.Config{AppView: &proxy.Service{DID: "did:web:appview.test", URL: appView.URL}, DisableSSRFProtection: true}
		c.HandleResolver = &pdsidentity.HandleResolver{Nameservers: []string{w.DNS.Addr}, HTTP: w.Web.Client(w.DNS.Addr)}
	})
	local := env.CreateAccount()
	resolve := func(h string) *apitest.Response {
		return env.Do("GET", "/xrpc/com.atproto.identity.resolveHandle", url.Values{"handle": {h}}, "", nil)
	}
	for h, want := range map[string]string{
		local.Handle.String():           local.DID.String(),
		"dns-only.elsewhere.social":     "did:plc:dnsonly0000000000000000",
		"Web-Only.Elsewhere.Social":     "did:plc:webonly0000000000000000",
		"appview-only.elsewhere.social": "did:plc:appviewonly00000000000000",
	} {
		r := resolve(h)
		var out struct{ DID string }
		r.JSON(t, &out)
		if r.Status != 200 || out.DID != want {
			t.Fatalf("%s: %d %s, want %s", h, r.Status, r.Body, want)
		}
	}
	if w.Web.Hits("web-only.elsewhere.social") == 0 || w.DNS.TXTQueries("dns-only.elsewhere.social") == 0 {
		t.Fatal("the handles' own DNS and host were not asked")
	}
	if r := resolve("nobody.elsewhere.social"); r.Status != 400 || r.ErrorName() != "HandleNotFound" {
		t.Fatalf("unknown foreign handle: %d %s", r.Status, r.Body)
	}
	asked, queried := appViewAsked.Load(), w.DNS.TXTQueries("nobody.test")
	if r := resolve("nobody.test"); r.Status != 400 || r.ErrorName() != "HandleNotFound" {
		t.Fatalf("unknown handle of this server's domain: %d %s", r.Status, r.Body)
	}
	if appViewAsked.Load() != asked || w.DNS.TXTQueries("nobody.test") != queried {
		t.Fatal("a handle of this server's own domain was looked up elsewhere")
	}
	if r := resolve("not a handle"); r.Status != 400 || r.ErrorName() != "InvalidRequest" {
		t.Fatalf("invalid handle: %d %s", r.Status, r.Body)
	}
}
