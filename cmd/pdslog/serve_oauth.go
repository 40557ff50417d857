package main

import (
	"net/http"

	"github.com/pdslog/pdslog/api"
)

// oauthSettings are the OAuth authorization server's settings (the issuer
// is the PDS's public URL; PDS_DEV_MODE relaxes the Secure cookie flag and
// the SSRF guard of client metadata fetches).
type oauthSettings struct {
	providerName string
	// clientHTTP, if set, fetches client metadata (tests: their world of
	// test hosts); nil means the SSRF-guarded default.
	clientHTTP *http.Client
}

func (o *oauthSettings) register(f *flags) {
	f.String(&o.providerName, "oauth-provider-name", "", "name the sign-in, consent and account pages show (default: the hostname)", "PDS_OAUTH_PROVIDER_NAME")
}

// apply puts the settings in the API's config.
func (o *oauthSettings) apply(cfg *api.Config, devMode bool) {
	cfg.OAuth.ProviderName = o.providerName
	cfg.OAuth.DevMode = devMode
	cfg.OAuth.ClientHTTP = o.clientHTTP
}
