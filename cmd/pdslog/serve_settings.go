package main

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// reservedTLDs are the top-level domains the reference PDS refuses for
// handles outside dev mode: they never resolve on the public internet.
var reservedTLDs = []string{".local", ".arpa", ".invalid", ".localhost", ".internal", ".example", ".alt", ".onion", ".test"}

func reservedTLD(domain string) bool {
	d := strings.ToLower(domain)
	for _, t := range reservedTLDs {
		if strings.HasSuffix(d, t) {
			return true
		}
	}
	return false
}

// validate checks every serve setting once, before anything is opened, so
// a mistake in pds.env is reported by the name the operator wrote.
func (c *serveCommand) validate() error {
	bad := func(env, format string, args ...any) error {
		return usageError{fmt.Sprintf("%s: %s", env, fmt.Sprintf(format, args...))}
	}
	if c.port < 0 || c.port > 65535 {
		return bad("PDS_PORT", "bad port %d", c.port)
	}
	if c.hostname != "localhost" {
		if _, err := syntax.ParseHandle(c.hostname); err != nil {
			return bad("PDS_HOSTNAME", "%q is not a domain name (relays need a DNS name; use localhost for local use)", c.hostname)
		}
	}
	for _, d := range splitList(c.handleDomains) {
		name := strings.TrimPrefix(d, ".")
		if _, err := syntax.ParseHandle("x." + name); err != nil {
			return bad("PDS_SERVICE_HANDLE_DOMAINS", "%q is not a domain", d)
		}
		if reservedTLD("."+name) && !c.devMode && c.hostname != "localhost" {
			return bad("PDS_SERVICE_HANDLE_DOMAINS", "%q ends in a reserved top-level domain; set PDS_DEV_MODE=true to allow it", d)
		}
	}
	if u, err := url.Parse(c.plcURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return bad("PDS_DID_PLC_URL", "%q is not an http(s) URL", c.plcURL)
	}
	for _, o := range splitList(c.corsOrigins) {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return bad("PDSLOG_CORS_ORIGINS", "%q is not an origin like https://app.example.com", o)
		}
	}
	for _, cr := range splitList(c.crawlers) {
		if u, err := url.Parse(cr); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("PDS_CRAWLERS", "%q is not an http(s) URL", cr)
		}
	}
	if c.jwtSecret != "" && len(c.jwtSecret) < 16 {
		return bad("PDS_JWT_SECRET", "too short: use at least 16 characters (e.g. openssl rand --hex 16)")
	}
	if c.plcRotationHex != "" {
		b, err := hex.DecodeString(strings.TrimSpace(c.plcRotationHex))
		if err != nil {
			return bad("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "not hex")
		}
		if _, err := atcrypto.ParsePrivateBytesK256(b); err != nil {
			return bad("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "not a K-256 private key")
		}
	}
	if err := c.blobs.validate(); err != nil {
		return err
	}
	if _, err := c.proxy.config(c.plcURL, c.devMode); err != nil {
		return err
	}
	if c.drain <= 0 {
		return usageError{fmt.Sprintf("--drain-timeout must be positive, got %s", c.drain)}
	}
	return nil
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
