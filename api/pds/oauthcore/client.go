package oauthcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// ClientMetadata is an OAuth client metadata document (RFC 7591 fields
// atproto uses; draft-ietf-oauth-client-id-metadata-document).
type ClientMetadata struct {
	ClientID                    string   `json:"client_id"`
	ApplicationType             string   `json:"application_type,omitempty"`
	GrantTypes                  []string `json:"grant_types"`
	ResponseTypes               []string `json:"response_types"`
	RedirectURIs                []string `json:"redirect_uris"`
	Scope                       string   `json:"scope"`
	TokenEndpointAuthMethod     string   `json:"token_endpoint_auth_method"`
	TokenEndpointAuthSigningAlg string   `json:"token_endpoint_auth_signing_alg,omitempty"`
	DPoPBoundAccessTokens       bool     `json:"dpop_bound_access_tokens"`
	JWKS                        *JWKS    `json:"jwks,omitempty"`
	JWKSURI                     string   `json:"jwks_uri,omitempty"`
	ClientName                  string   `json:"client_name,omitempty"`
	ClientURI                   string   `json:"client_uri,omitempty"`
	LogoURI                     string   `json:"logo_uri,omitempty"`
	TosURI                      string   `json:"tos_uri,omitempty"`
	PolicyURI                   string   `json:"policy_uri,omitempty"`
	SubjectType                 string   `json:"subject_type,omitempty"`
	// Refused when set (the reference's checks).
	DefaultMaxAge                      *json.RawMessage `json:"default_max_age,omitempty"`
	AuthorizationEncryptedResponseEnc  *json.RawMessage `json:"authorization_encrypted_response_enc,omitempty"`
	TLSClientCertificateBoundAccessTok *json.RawMessage `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// Client is a validated client.
type Client struct {
	ID       string
	Metadata ClientMetadata
	// Loopback: a development client (client_id http://localhost…), whose
	// metadata the server derives from the client_id; it is shown on the
	// consent page as an application on the user's device.
	Loopback bool
	// Keys are a confidential client's assertion keys (jwks or jwks_uri).
	Keys []JWK
}

// Confidential reports whether the client authenticates with
// private_key_jwt: its sessions get the extended lifetimes.
func (c *Client) Confidential() bool { return c.Metadata.TokenEndpointAuthMethod == "private_key_jwt" }

// SessionLifetime and RefreshLifetime are the client's session bounds.
func (c *Client) SessionLifetime() time.Duration {
	if c.Confidential() {
		return SessionLifetimeExtended
	}
	return SessionLifetime
}

func (c *Client) RefreshLifetime() time.Duration {
	if c.Confidential() {
		return RefreshLifetimeExtended
	}
	return RefreshLifetime
}

// Name is what the consent page calls the client.
func (c *Client) Name() string {
	if c.Metadata.ClientName != "" {
		return c.Metadata.ClientName
	}
	if c.Loopback {
		return "An application on your device"
	}
	if u, err := url.Parse(c.ID); err == nil {
		return u.Hostname()
	}
	return c.ID
}

// Host is the client's web address as shown to the user: its client_uri,
// else its client_id's origin; "" for a loopback client.
func (c *Client) Host() string {
	if c.Loopback {
		return ""
	}
	raw := c.Metadata.ClientURI
	if raw == "" {
		raw = c.ID
	}
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return ""
}

// Logo is the client's https logo URL, or "".
func (c *Client) Logo() string {
	if u, err := url.Parse(c.Metadata.LogoURI); err == nil && u.Scheme == "https" && u.Host != "" {
		return u.String()
	}
	return ""
}

// Limits of client metadata fetches.
const (
	// MaxMetadataSize caps a client metadata document or JWKS.
	MaxMetadataSize = 64 << 10
	// FetchTimeout bounds one fetch.
	FetchTimeout = 10 * time.Second
	// MetadataCacheTTL is how long a fetched document is reused.
	MetadataCacheTTL = 10 * time.Minute
	// maxCached bounds the cache.
	maxCached = 1000
)

// Resolver turns client_ids into validated clients, fetching discoverable
// clients' metadata (and JWKS) over HTTP with a size cap, a timeout and a
// cache. HTTP must refuse private addresses (the SSRF guard) and
// redirects: Resolver sets no policy of its own beyond the cap and the
// timeout.
type Resolver struct {
	HTTP *http.Client
	Now  func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	body    []byte
	expires time.Time
}

// Resolve returns the client of clientID. Errors are *Error:
// invalid_client_metadata for a client_id or document that is not valid
// (unreachable, too large, refused by the guard, breaking a rule).
func (r *Resolver) Resolve(ctx context.Context, clientID string) (*Client, error) {
	if strings.HasPrefix(clientID, "http://localhost") {
		return loopbackClient(clientID)
	}
	u, err := parseDiscoverableClientID(clientID)
	if err != nil {
		return nil, InvalidClientMetadata("Invalid client_id %q: %v", clientID, err)
	}
	body, err := r.fetch(ctx, u.String())
	if err != nil {
		return nil, InvalidClientMetadata("Unable to obtain client metadata for %q: %v", clientID, err)
	}
	var md ClientMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, InvalidClientMetadata("Invalid client metadata for %q: %v", clientID, err)
	}
	c := &Client{ID: clientID, Metadata: md}
	if err := validateMetadata(c); err != nil {
		return nil, InvalidClientMetadata("Invalid client metadata for %q: %v", clientID, err)
	}
	if err := validateDiscoverable(c, u); err != nil {
		return nil, InvalidClientMetadata("Invalid client metadata for %q: %v", clientID, err)
	}
	if md.JWKS != nil {
		c.Keys = md.JWKS.Keys
	} else if md.JWKSURI != "" {
		raw, err := r.fetch(ctx, md.JWKSURI)
		if err != nil {
			return nil, InvalidClientMetadata("Unable to obtain jwks from %q for %q: %v", md.JWKSURI, clientID, err)
		}
		var set JWKS
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, InvalidClientMetadata("Invalid jwks at %q: %v", md.JWKSURI, err)
		}
		c.Keys = set.Keys
	}
	if c.Confidential() && len(c.Keys) == 0 {
		return nil, InvalidClientMetadata("private_key_jwt clients need at least one key")
	}
	return c, nil
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// fetch GETs a JSON document (cached), refusing redirects, statuses other
// than 200, other media types and bodies over MaxMetadataSize.
func (r *Resolver) fetch(ctx context.Context, u string) ([]byte, error) {
	now := r.now()
	r.mu.Lock()
	if c, ok := r.cache[u]; ok && c.expires.After(now) {
		r.mu.Unlock()
		return c.body, nil
	}
	r.mu.Unlock()
	if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" {
		return nil, errors.New("only https URLs are fetched")
	}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	hc := *r.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") }
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("content type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength > MaxMetadataSize {
		return nil, fmt.Errorf("document of %d bytes is over the %d byte limit", resp.ContentLength, MaxMetadataSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxMetadataSize {
		return nil, fmt.Errorf("document is over the %d byte limit", MaxMetadataSize)
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) >= maxCached {
		r.cache = map[string]cached{}
	}
	r.cache[u] = cached{body: body, expires: now.Add(MetadataCacheTTL)}
	r.mu.Unlock()
	return body, nil
}

// IsLocalHostname reports hostnames no public client may use: one label,
// or a special-use TLD (the reference's isLocalHostname).
func IsLocalHostname(host string) bool {
	parts := strings.Split(host, ".")
	if len(parts) < 2 {
		return true
	}
	switch strings.ToLower(parts[len(parts)-1]) {
	case "test", "local", "localhost", "invalid", "example":
		return true
	}
	return false
}

func isIPHost(host string) bool {
	return net.ParseIP(strings.Trim(host, "[]")) != nil
}

func parseDiscoverableClientID(id string) (*url.URL, error) {
	u, err := url.Parse(id)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Scheme != "https":
		return nil, errors.New("must be an https URL")
	case u.User != nil:
		return nil, errors.New("must not contain credentials")
	case u.Fragment != "" || strings.Contains(id, "#"):
		return nil, errors.New("must not contain a fragment")
	case u.Path == "" || u.Path == "/":
		return nil, errors.New(`must contain a path component (e.g. "/oauth-client-metadata.json")`)
	case strings.HasSuffix(u.Path, "/"):
		return nil, errors.New("path must not end with a slash")
	case isIPHost(u.Hostname()):
		return nil, errors.New("hostname must not be an IP address")
	case IsLocalHostname(u.Hostname()):
		return nil, errors.New("hostname must not be a local hostname")
	case u.String() != id:
		return nil, fmt.Errorf("must be in canonical form (%q)", u.String())
	}
	return u, nil
}

// loopbackClient derives a development client's metadata from its
// client_id: http://localhost[/][?scope=…&redirect_uri=…].
func loopbackClient(id string) (*Client, error) {
	rest := strings.TrimPrefix(id, "http://localhost")
	rest = strings.TrimPrefix(rest, "/")
	if rest != "" && !strings.HasPrefix(rest, "?") {
		return nil, InvalidClientMetadata("Invalid loopback client_id %q: it must not have a path", id)
	}
	if strings.Contains(rest, "#") {
		return nil, InvalidClientMetadata("Invalid loopback client_id %q: it must not have a fragment", id)
	}
	q, err := url.ParseQuery(strings.TrimPrefix(rest, "?"))
	if err != nil {
		return nil, InvalidClientMetadata("Invalid loopback client_id %q: %v", id, err)
	}
	scope := "atproto"
	var redirects []string
	for k, vs := range q {
		switch k {
		case "scope":
			if len(vs) != 1 {
				return nil, InvalidClientMetadata(`Invalid loopback client_id: duplicate "scope"`)
			}
			scope = vs[0]
		case "redirect_uri":
			for _, v := range vs {
				u, err := url.Parse(v)
				if err != nil || u.Scheme != "http" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1") {
					return nil, InvalidClientMetadata(`Invalid loopback client_id: redirect_uri %q must be http://127.0.0.1 or http://[::1] (RFC 8252)`, v)
				}
				redirects = append(redirects, v)
			}
		default:
			return nil, InvalidClientMetadata("Invalid loopback client_id: unexpected parameter %q", k)
		}
	}
	if len(redirects) == 0 {
		redirects = []string{"http://127.0.0.1/", "http://[::1]/"}
	}
	c := &Client{ID: id, Loopback: true, Metadata: ClientMetadata{ClientID: id, Scope: scope, RedirectURIs: redirects,
		ResponseTypes: []string{"code"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethod: "none", ApplicationType: "native", DPoPBoundAccessTokens: true}}
	if err := validateMetadata(c); err != nil {
		return nil, InvalidClientMetadata("Invalid loopback client metadata: %v", err)
	}
	return c, nil
}

func dup(ss []string) string {
	for i, s := range ss {
		if slices.Contains(ss[i+1:], s) {
			return s
		}
	}
	return ""
}

// validateMetadata applies the reference's validateClientMetadata rules.
func validateMetadata(c *Client) error {
	md := &c.Metadata
	if md.ClientID != c.ID {
		return errors.New("client_id does not match")
	}
	if md.JWKS != nil && md.JWKSURI != "" {
		return errors.New("jwks_uri and jwks are mutually exclusive")
	}
	if md.DefaultMaxAge != nil {
		return errors.New(`unsupported "default_max_age"`)
	}
	if md.AuthorizationEncryptedResponseEnc != nil {
		return errors.New("encrypted authorization responses are not supported")
	}
	if md.TLSClientCertificateBoundAccessTok != nil {
		return errors.New("mutual-TLS bound access tokens are not supported")
	}
	switch md.ApplicationType {
	case "", "web":
		md.ApplicationType = "web"
	case "native":
	default:
		return fmt.Errorf("application_type %q", md.ApplicationType)
	}
	if md.ClientURI != "" {
		u, err := url.Parse(md.ClientURI)
		if err != nil || IsLocalHostname(u.Hostname()) {
			return errors.New("client_uri hostname is invalid")
		}
	}
	scopes := strings.Split(md.Scope, " ")
	if md.Scope == "" {
		return errors.New("missing scope")
	}
	if !slices.Contains(scopes, "atproto") {
		return errors.New(`missing "atproto" scope`)
	}
	if d := dup(scopes); d != "" {
		return fmt.Errorf("duplicate scope %q", d)
	}
	if d := dup(md.GrantTypes); d != "" {
		return fmt.Errorf("duplicate grant type %q", d)
	}
	for _, g := range md.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return fmt.Errorf("grant type %q is not supported", g)
		}
	}
	if !slices.Contains(md.ResponseTypes, "code") {
		return errors.New(`response_types must include "code"`)
	}
	if !slices.Contains(md.GrantTypes, "authorization_code") {
		return errors.New(`grant_types must include "authorization_code"`)
	}
	if md.SubjectType != "" && md.SubjectType != "public" {
		return errors.New(`only "public" subject_type is supported`)
	}
	switch md.TokenEndpointAuthMethod {
	case "none":
		if md.TokenEndpointAuthSigningAlg != "" {
			return errors.New(`token_endpoint_auth_method "none" must not have token_endpoint_auth_signing_alg`)
		}
	case "private_key_jwt":
		if md.JWKS == nil && md.JWKSURI == "" {
			return errors.New("private_key_jwt needs jwks or jwks_uri")
		}
		if md.JWKS != nil && len(md.JWKS.Keys) == 0 {
			return errors.New("private_key_jwt needs at least one key in jwks")
		}
		if md.TokenEndpointAuthSigningAlg != "ES256" {
			return errors.New(`token_endpoint_auth_signing_alg must be "ES256"`)
		}
	default:
		return fmt.Errorf(`unsupported token_endpoint_auth_method %q (use "none" or "private_key_jwt")`, md.TokenEndpointAuthMethod)
	}
	if !md.DPoPBoundAccessTokens {
		return errors.New(`"dpop_bound_access_tokens" must be true`)
	}
	if md.ApplicationType == "native" && md.TokenEndpointAuthMethod != "none" {
		return errors.New(`native clients must use token_endpoint_auth_method "none"`)
	}
	if len(md.RedirectURIs) == 0 {
		return errors.New("at least one redirect_uri is required")
	}
	for _, raw := range md.RedirectURIs {
		if err := validateRedirectURI(raw, md.ApplicationType); err != nil {
			return err
		}
	}
	if c.Loopback {
		if md.ClientURI != "" {
			return errors.New("client_uri is not allowed for loopback clients")
		}
		if md.ApplicationType != "native" {
			return errors.New(`loopback clients must have application_type "native"`)
		}
	}
	return nil
}

// validateRedirectURI applies the reference's redirect URI rules: https to
// a public host, http only to a loopback IP (native apps), or a private-use
// scheme (native apps); never localhost, never credentials.
func validateRedirectURI(raw, appType string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("invalid redirect_uri %q", raw)
	}
	if u.User != nil {
		return fmt.Errorf("redirect_uri %s must not contain credentials", raw)
	}
	host := u.Hostname()
	switch {
	case host == "localhost":
		return fmt.Errorf("loopback redirect_uri %s is not allowed (use an explicit IP instead)", raw)
	case u.Scheme == "http" && (host == "127.0.0.1" || host == "::1"):
		if appType != "native" {
			return errors.New("loopback redirect URIs are only allowed for native apps")
		}
	case u.Scheme == "http":
		return errors.New(`only loopback redirect URIs may use the "http" scheme`)
	case u.Scheme == "https":
		if IsLocalHostname(host) {
			return fmt.Errorf("redirect_uri %q's domain name must not be a local hostname", raw)
		}
	case strings.Contains(u.Scheme, "."):
		if appType != "native" {
			return errors.New("private-use URI scheme redirect URIs are only allowed for native apps")
		}
	default:
		return fmt.Errorf("invalid redirect_uri scheme %q", u.Scheme)
	}
	return nil
}

func validateDiscoverable(c *Client, id *url.URL) error {
	md := &c.Metadata
	if md.ClientURI != "" {
		cu, err := url.Parse(md.ClientURI)
		if err != nil {
			return errors.New("invalid client_uri")
		}
		if cu.Scheme != id.Scheme || cu.Host != id.Host {
			return errors.New("client_uri must have the same origin as the client_id")
		}
		parent := cu.Path
		if !strings.HasSuffix(parent, "/") {
			parent += "/"
		}
		if cu.Path != id.Path && !strings.HasPrefix(id.Path, parent) {
			return errors.New("client_uri must be a parent URL of the client_id")
		}
	}
	for _, raw := range md.RedirectURIs {
		u, _ := url.Parse(raw)
		if strings.Contains(u.Scheme, ".") {
			labels := strings.Split(id.Hostname(), ".")
			slices.Reverse(labels)
			if u.Scheme != strings.Join(labels, ".") {
				return fmt.Errorf("private-use URI scheme redirect URIs must be the client_id's domain name reversed (%s:)", strings.Join(labels, "."))
			}
		}
	}
	return nil
}

// RedirectURIAllowed reports whether redirect is one of the client's
// redirect URIs: exactly, or, for a loopback IP registered without a port,
// with any port (RFC 8252 §7.3, §8.4).
func (c *Client) RedirectURIAllowed(redirect string) bool {
	for _, allowed := range c.Metadata.RedirectURIs {
		if allowed == redirect {
			return true
		}
		a, err1 := url.Parse(allowed)
		r, err2 := url.Parse(redirect)
		if err1 != nil || err2 != nil {
			continue
		}
		if h := a.Hostname(); h == "127.0.0.1" || h == "::1" {
			if (a.Port() == "" || a.Port() == r.Port()) && a.Hostname() == r.Hostname() && a.Scheme == r.Scheme &&
				a.EscapedPath() == r.EscapedPath() && a.RawQuery == r.RawQuery && a.Fragment == r.Fragment && r.User == nil {
				return true
			}
		}
	}
	return false
}

// DefaultRedirectURI is the client's only redirect URI, or "".
func (c *Client) DefaultRedirectURI() string {
	if len(c.Metadata.RedirectURIs) == 1 {
		return c.Metadata.RedirectURIs[0]
	}
	return ""
}

// ClientAssertionType is the only client_assertion_type (RFC 7523).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientAuth is a verified client authentication.
type ClientAuth struct {
	Method string // "none" or "private_key_jwt"
	KeyID  string
	JKT    string    // thumbprint of the assertion key
	JTI    string    // the assertion's jti (replay check)
	Exp    time.Time // until when the jti must be remembered
}

// Authenticate checks the client's credentials from a request to issuer:
// nothing for a public client (a client_assertion is refused); a
// private_key_jwt assertion (ES256, iss = sub = client_id, aud = issuer,
// jti, at most ClientAssertionMaxAge old, kid of one of its keys) for a
// confidential one. Errors are *Error (invalid_client).
func (c *Client) Authenticate(assertionType, assertion, issuer string, now time.Time) (*ClientAuth, error) {
	if !c.Confidential() {
		if assertion != "" || assertionType != "" {
			return nil, InvalidClient("client authentication method \"none\" takes no client_assertion")
		}
		return &ClientAuth{Method: "none"}, nil
	}
	if assertion == "" {
		return nil, InvalidClient(`client authentication method "private_key_jwt" requires a "client_assertion"`)
	}
	if assertionType != ClientAssertionType {
		return nil, InvalidClient("unsupported client_assertion_type %q", assertionType)
	}
	_, payload, used, err := verifyES256(assertion, func(hdr map[string]any) (*JWK, error) {
		kid, _ := hdr["kid"].(string)
		if kid == "" {
			return nil, errors.New(`"kid" required in client_assertion`)
		}
		for i, k := range c.Keys {
			if k.Kid == kid && (k.Use == "" || k.Use == "sig") && (k.Alg == "" || k.Alg == "ES256") {
				return &c.Keys[i], nil
			}
		}
		return nil, fmt.Errorf("no key %q in the client's jwks", kid)
	})
	if err != nil {
		return nil, InvalidClient("Validation of \"client_assertion\" failed: %v", err)
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		JTI string          `json:"jti"`
		IAT *json.Number    `json:"iat"`
		Exp *json.Number    `json:"exp"`
	}
	if err := decodeClaims(payload, &claims); err != nil {
		return nil, InvalidClient("Validation of \"client_assertion\" failed: malformed claims")
	}
	var auds []string
	var one string
	if json.Unmarshal(claims.Aud, &one) == nil {
		auds = []string{one}
	} else {
		_ = json.Unmarshal(claims.Aud, &auds)
	}
	switch {
	case claims.Iss != c.ID || claims.Sub != c.ID:
		return nil, InvalidClient("client_assertion iss and sub must be the client_id")
	case !slices.Contains(auds, issuer):
		return nil, InvalidClient("client_assertion aud must be this server (%s)", issuer)
	case claims.JTI == "":
		return nil, InvalidClient(`client_assertion needs a "jti"`)
	case claims.IAT == nil:
		return nil, InvalidClient(`client_assertion needs an "iat"`)
	}
	iatF, err := claims.IAT.Float64()
	if err != nil {
		return nil, InvalidClient("client_assertion iat is malformed")
	}
	iat := time.Unix(int64(iatF), 0)
	if now.Sub(iat) > ClientAssertionMaxAge || iat.After(now.Add(5*time.Second)) {
		return nil, InvalidClient("client_assertion is too old or from the future")
	}
	exp := iat.Add(ClientAssertionMaxAge + time.Minute)
	if claims.Exp != nil {
		e, err := claims.Exp.Float64()
		if err != nil || time.Unix(int64(e), 0).Before(now.Add(-5*time.Second)) {
			return nil, InvalidClient("client_assertion has expired")
		}
		if t := time.Unix(int64(e), 0); t.After(exp) {
			exp = t
		}
	}
	return &ClientAuth{Method: "private_key_jwt", KeyID: used.Kid, JKT: used.Thumbprint(), JTI: claims.JTI, Exp: exp}, nil
}
