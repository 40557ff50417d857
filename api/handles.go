package api

import (
	"net/http"

	"github.com/pdslog/pdslog/api/identity"
	pdsidentity "github.com/pdslog/pdslog/api/pds/identity"
	"github.com/pdslog/pdslog/api/pds/ssrf"
)

// foreignHandles builds resolveHandle's resolution of handles hosted
// elsewhere: cfg.HandleResolver, or one from the proxy's settings (its
// nameservers, the SSRF guard unless disabled), then the AppView.
func foreignHandles(cfg Config) *identity.ForeignHandles {
	guard := cfg.Proxy == nil || !cfg.Proxy.DisableSSRFProtection
	r := cfg.HandleResolver
	if r == nil {
		r = &pdsidentity.HandleResolver{Guard: guard, Logger: cfg.Logger.With("component", "handles")}
		if p := cfg.Proxy; p != nil {
			r.Nameservers, r.BackupNameservers = p.HandleNameservers, p.HandleBackupNameservers
		}
	}
	f := &identity.ForeignHandles{Resolver: r, Client: &http.Client{Transport: ssrf.Transport(guard),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if cfg.Proxy != nil && cfg.Proxy.AppView != nil {
		f.AppViewURL = cfg.Proxy.AppView.URL
	}
	return f
}
