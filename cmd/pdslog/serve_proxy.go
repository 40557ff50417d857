package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	pdsidentity "github.com/pdslog/pdslog/api/pds/identity"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/api/proxy"
)

// proxySettings are serve's service-proxying settings, under the
// reference's env names.
type proxySettings struct {
	appViewURL, appViewDID, appViewCDN string
	modURL, modDID                     string
	reportURL, reportDID               string
	disableSSRF                        bool
	combinedAud                        bool
	headersTimeout, bodyTimeout        time.Duration
	maxResponseSize                    int64
	didStaleTTL, didMaxTTL             time.Duration
	resolveTimeout                     time.Duration
	handleNS, handleBackupNS           string
}

func (p *proxySettings) register(f *flags) {
	f.String(&p.appViewURL, "bsky-app-view-url", "", "AppView that answers app.bsky.* (e.g. https://api.bsky.app); unset: app.bsky.* needs an atproto-proxy header", "PDS_BSKY_APP_VIEW_URL")
	f.String(&p.appViewDID, "bsky-app-view-did", "", "DID of the AppView (e.g. did:web:api.bsky.app)", "PDS_BSKY_APP_VIEW_DID")
	f.String(&p.appViewCDN, "bsky-app-view-cdn-url-pattern", "", "image URL pattern for read-after-write views, three %s: preset, DID, CID (default: this PDS's getBlob)", "PDS_BSKY_APP_VIEW_CDN_URL_PATTERN")
	f.String(&p.modURL, "mod-service-url", "", "moderation service that answers tools.ozone.*", "PDS_MOD_SERVICE_URL")
	f.String(&p.modDID, "mod-service-did", "", "DID of the moderation service", "PDS_MOD_SERVICE_DID")
	f.String(&p.reportURL, "report-service-url", "", "service that answers com.atproto.moderation.createReport (default: the moderation service)", "PDS_REPORT_SERVICE_URL")
	f.String(&p.reportDID, "report-service-did", "", "DID of the report service", "PDS_REPORT_SERVICE_DID")
	f.Bool(&p.disableSSRF, "disable-ssrf-protection", false, "let proxied calls reach http:// URLs and private, loopback and link-local addresses (dev mode does too)", "PDS_DISABLE_SSRF_PROTECTION")
	f.Bool(&p.combinedAud, "proxy-service-auth-combined-aud", false, "sign proxied calls' service auth for DID#service_id instead of the bare service DID", "PDS_PROXY_SERVICE_AUTH_COMBINED_AUD")
	f.Duration(&p.headersTimeout, "proxy-headers-timeout", proxy.DefaultHeadersTimeout, "how long a proxied call waits for the upstream's headers", "PDS_PROXY_HEADERS_TIMEOUT")
	f.Duration(&p.bodyTimeout, "proxy-body-timeout", proxy.DefaultBodyTimeout, "how long a proxied answer may pause mid-body", "PDS_PROXY_BODY_TIMEOUT")
	f.Int64(&p.maxResponseSize, "proxy-max-response-size", proxy.DefaultMaxResponseSize, "largest proxied answer, in bytes", "PDS_PROXY_MAX_RESPONSE_SIZE")
	f.Duration(&p.didStaleTTL, "did-cache-stale-ttl", pdsidentity.DefaultDIDCacheStaleTTL, "how long a cached DID document is used before it is refreshed in the background", "PDS_DID_CACHE_STALE_TTL")
	f.Duration(&p.didMaxTTL, "did-cache-max-ttl", pdsidentity.DefaultDIDCacheMaxTTL, "how long a cached DID document is used at all", "PDS_DID_CACHE_MAX_TTL")
	f.String(&p.handleNS, "handle-nameservers", "", "comma-separated host:port of the DNS servers asked for the _atproto TXT records of handles hosted elsewhere (default: the system's)", "PDSLOG_HANDLE_NAMESERVERS")
	f.String(&p.handleBackupNS, "handle-backup-nameservers", "", "comma-separated host:port of DNS servers asked when the first say a handle has no record", "PDS_HANDLE_BACKUP_NAMESERVERS")
	f.Duration(&p.resolveTimeout, "id-resolver-timeout", pdsidentity.DefaultResolveTimeout, "how long a DID resolution may take", "PDS_ID_RESOLVER_TIMEOUT")
}

// service checks one URL/DID pair: both or neither, an http(s) URL (https
// while SSRF protection is on), a DID.
func (p *proxySettings) service(urlEnv, rawURL, didEnv, rawDID string, guard bool) (*proxy.Service, error) {
	bad := func(env, format string, args ...any) error {
		return usageError{fmt.Sprintf("%s: %s", env, fmt.Sprintf(format, args...))}
	}
	switch {
	case rawURL == "" && rawDID == "":
		return nil, nil
	case rawDID == "":
		return nil, bad(didEnv, "must be set when %s is", urlEnv)
	case rawURL == "":
		return nil, bad(urlEnv, "must be set when %s is", didEnv)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, bad(urlEnv, "%q is not an http(s) URL", rawURL)
	}
	if guard && u.Scheme != "https" {
		return nil, bad(urlEnv, "%q is refused while SSRF protection is on: use https, or set PDS_DEV_MODE or PDS_DISABLE_SSRF_PROTECTION", rawURL)
	}
	did, err := syntax.ParseDID(rawDID)
	if err != nil {
		return nil, bad(didEnv, "%q is not a DID", rawDID)
	}
	return &proxy.Service{DID: did, URL: rawURL}, nil
}

// config checks the settings and returns the proxy configuration.
func (p *proxySettings) config(plcURL string, devMode bool) (*proxy.Config, error) {
	cfg := &proxy.Config{PLC: &plc.Client{URL: plcURL}, DisableSSRFProtection: p.disableSSRF || devMode,
		AppViewCDNURLPattern: p.appViewCDN, ServiceAuthCombinedAud: p.combinedAud, HeadersTimeout: p.headersTimeout,
		BodyTimeout: p.bodyTimeout, MaxResponseSize: p.maxResponseSize, DIDCacheStaleTTL: p.didStaleTTL,
		DIDCacheMaxTTL: p.didMaxTTL, ResolveTimeout: p.resolveTimeout}
	guard := !cfg.DisableSSRFProtection
	var err error
	if cfg.AppView, err = p.service("PDS_BSKY_APP_VIEW_URL", p.appViewURL, "PDS_BSKY_APP_VIEW_DID", p.appViewDID, guard); err != nil {
		return nil, err
	}
	if cfg.HandleNameservers, err = nameservers("PDSLOG_HANDLE_NAMESERVERS", p.handleNS); err != nil {
		return nil, err
	}
	if cfg.HandleBackupNameservers, err = nameservers("PDS_HANDLE_BACKUP_NAMESERVERS", p.handleBackupNS); err != nil {
		return nil, err
	}
	if cfg.ModService, err = p.service("PDS_MOD_SERVICE_URL", p.modURL, "PDS_MOD_SERVICE_DID", p.modDID, guard); err != nil {
		return nil, err
	}
	if cfg.ReportService, err = p.service("PDS_REPORT_SERVICE_URL", p.reportURL, "PDS_REPORT_SERVICE_DID", p.reportDID, guard); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		env string
		d   time.Duration
	}{{"PDS_PROXY_HEADERS_TIMEOUT", p.headersTimeout}, {"PDS_PROXY_BODY_TIMEOUT", p.bodyTimeout},
		{"PDS_DID_CACHE_STALE_TTL", p.didStaleTTL}, {"PDS_DID_CACHE_MAX_TTL", p.didMaxTTL}, {"PDS_ID_RESOLVER_TIMEOUT", p.resolveTimeout}} {
		if d.d <= 0 {
			return nil, usageError{fmt.Sprintf("%s: must be positive, got %s", d.env, d.d)}
		}
	}
	if p.didMaxTTL < p.didStaleTTL {
		return nil, usageError{fmt.Sprintf("PDS_DID_CACHE_MAX_TTL: %s is shorter than PDS_DID_CACHE_STALE_TTL %s", p.didMaxTTL, p.didStaleTTL)}
	}
	if p.maxResponseSize <= 0 {
		return nil, usageError{fmt.Sprintf("PDS_PROXY_MAX_RESPONSE_SIZE: must be positive, got %d", p.maxResponseSize)}
	}
	if n := countVerbs(p.appViewCDN); p.appViewCDN != "" && n != 3 {
		return nil, usageError{fmt.Sprintf("PDS_BSKY_APP_VIEW_CDN_URL_PATTERN: %q has %d %%s, want 3 (preset, DID, CID)", p.appViewCDN, n)}
	}
	return cfg, nil
}

func countVerbs(s string) int {
	n := 0
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' && s[i+1] == 's' {
			n++
		}
	}
	return n
}

// nameservers parses a comma-separated list of DNS servers, each host or
// host:port (port 53 when not given).
func nameservers(env, raw string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(raw, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if h, port, err := net.SplitHostPort(s); err == nil && (h == "" || port == "") {
			return nil, usageError{fmt.Sprintf("%s: %q is not host or host:port", env, s)}
		} else if err != nil {
			if strings.Contains(s, ":") && !strings.HasPrefix(s, "[") && strings.Count(s, ":") == 1 {
				return nil, usageError{fmt.Sprintf("%s: %q is not host or host:port", env, s)}
			}
			s = net.JoinHostPort(strings.Trim(s, "[]"), "53")
		}
		out = append(out, s)
	}
	return out, nil
}
