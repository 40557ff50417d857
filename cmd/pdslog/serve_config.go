package main

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/eventlog"
)

// serveConfig is serve's settings, validated and typed: what building the
// server needs, and nothing that has to be checked again.
type serveConfig struct {
	dataDir    string
	listenAddr string
	drain      time.Duration
	minFree    int64 // the log's reserve (probe of a failed disk)
	pds        pds.Options
	api        api.Config
	blobs      blobStoreConfig
	crawlers   []string
	pprofAddr  string
	hostname   string
	// metricsAddr, if set, is the operator listener for /metrics.
	metricsAddr string
	// idleTimeout and maxConnsPerIP are the public listener's limits
	// (maxConnsPerIP 0: no cap).
	idleTimeout   time.Duration
	maxConnsPerIP int
	// mirror, if set, runs the Cloudflare mirror inside serve.
	mirror *mirrorSettings
	// backup, if set, ships the log (PDSLOG_BACKUP_URL; serve_backup.go).
	backup *backupSettings
}

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

// config checks every serve setting once, before anything is opened, so a
// mistake in pds.env is reported by the name the operator wrote, and
// returns them typed.
func (c *serveCommand) config() (*serveConfig, error) {
	bad := func(env, format string, args ...any) error {
		return usageError{fmt.Sprintf("%s: %s", env, fmt.Sprintf(format, args...))}
	}
	if c.port < 0 || c.port > 65535 {
		return nil, bad("PDS_PORT", "bad port %d", c.port)
	}
	if c.hostname != "localhost" {
		if _, err := syntax.ParseHandle(c.hostname); err != nil {
			return nil, bad("PDS_HOSTNAME", "%q is not a domain name (relays need a DNS name; use localhost for local use)", c.hostname)
		}
	}
	svc := pds.Service{Hostname: c.hostname, Port: c.port, InviteRequired: c.inviteRequired, ContactEmail: c.contactEmail,
		PrivacyPolicy: c.privacyPolicy, TermsOfService: c.termsOfService, BlobUploadLimit: c.blobs.uploadLimit,
		HandleDomains: pds.DefaultHandleDomains(c.hostname)}
	if domains := splitList(c.handleDomains); len(domains) > 0 {
		svc.HandleDomains = nil
		for _, d := range domains {
			name := strings.TrimPrefix(d, ".")
			if _, err := syntax.ParseHandle("x." + name); err != nil {
				return nil, bad("PDS_SERVICE_HANDLE_DOMAINS", "%q is not a domain", d)
			}
			if reservedTLD("."+name) && !c.devMode && c.hostname != "localhost" {
				return nil, bad("PDS_SERVICE_HANDLE_DOMAINS", "%q ends in a reserved top-level domain; set PDS_DEV_MODE=true to allow it", d)
			}
			svc.HandleDomains = append(svc.HandleDomains, "."+name)
		}
	}
	if u, err := url.Parse(c.plcURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, bad("PDS_DID_PLC_URL", "%q is not an http(s) URL", c.plcURL)
	}
	origins := splitList(c.corsOrigins)
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, bad("PDSLOG_CORS_ORIGINS", "%q is not an origin like https://app.example.com", o)
		}
	}
	crawlers := splitList(c.crawlers)
	for _, cr := range crawlers {
		if u, err := url.Parse(cr); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, bad("PDS_CRAWLERS", "%q is not an http(s) URL", cr)
		}
	}
	var jwt []byte
	if c.jwtSecret != "" {
		if len(c.jwtSecret) < 16 {
			return nil, bad("PDS_JWT_SECRET", "too short: use at least 16 characters (e.g. openssl rand --hex 16)")
		}
		jwt = []byte(c.jwtSecret)
	}
	var rotation *atcrypto.PrivateKeyK256
	if c.plcRotationHex != "" {
		b, err := hex.DecodeString(strings.TrimSpace(c.plcRotationHex))
		if err != nil {
			return nil, bad("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "not hex")
		}
		if rotation, err = atcrypto.ParsePrivateBytesK256(b); err != nil {
			return nil, bad("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "not a K-256 private key")
		}
	}
	blobs, err := c.blobs.config()
	if err != nil {
		return nil, err
	}
	proxyCfg, err := c.proxy.config(c.plcURL, c.devMode)
	if err != nil {
		return nil, err
	}
	if c.drain <= 0 {
		return nil, usageError{fmt.Sprintf("--drain-timeout must be positive, got %s", c.drain)}
	}
	fh, err := c.firehose.config()
	if err != nil {
		return nil, err
	}
	trusted, err := c.net.config()
	if err != nil {
		return nil, err
	}
	mc, err := c.email.config()
	if err != nil {
		return nil, err
	}
	if c.maxImportSize <= 0 {
		return nil, bad("PDS_MAX_REPO_IMPORT_SIZE", "must be positive, got %d", c.maxImportSize)
	}
	cfg := &serveConfig{dataDir: c.dataDir, drain: c.drain, minFree: c.minFree, blobs: blobs.store, crawlers: crawlers,
		pprofAddr: c.pprofAddr, hostname: c.hostname, metricsAddr: c.metricsAddr, idleTimeout: c.net.idleTimeout,
		maxConnsPerIP: c.net.maxConnsPerIP}
	if !c.rateLimits {
		// Load tests from one machine: no per-address caps either.
		cfg.maxConnsPerIP, fh.MaxPerAddress = 0, 0
	}
	if c.mirrorOn {
		if err := c.mirror.validate(true); err != nil {
			return nil, err
		}
		cfg.mirror = &c.mirror
	}
	if c.backup.url != "" {
		if err := c.backup.validate("PDSLOG_BACKUP_URL", true); err != nil {
			return nil, err
		}
		cfg.backup = &c.backup
	}
	bind := c.bind
	if bind == "" && c.hostname == "localhost" {
		bind = "localhost"
	}
	cfg.listenAddr = net.JoinHostPort(bind, strconv.Itoa(c.port))
	cfg.pds = pds.Options{
		Command:             "serve",
		SeqFloor:            eventlog.Seq(c.seqFloor),
		MinFreeBytes:        c.minFree,
		FS:                  c.logFS,
		Service:             svc,
		JWTSecret:           jwt,
		RotationKey:         rotation,
		PLC:                 &plc.Client{URL: c.plcURL},
		BlobGrace:           blobs.grace,
		BlobCollectInterval: blobs.collectEach,
		Mail:                mc.sender,
		MailFrom:            mc.from,
		ModerationMail:      mc.moderation,
		ModerationMailFrom:  mc.moderationFrom,
		DevMode:             c.devMode,
		RefuseImports:       !c.acceptImports,
	}
	cfg.api = api.Config{
		AdminPassword:  c.adminPassword,
		CORSOrigins:    origins,
		RateLimits:     c.rateLimits,
		TrustedProxies: trusted,
		BodyTimeout:    c.net.bodyTimeout,
		UploadTimeout:  c.net.uploadTimeout,
		BlobTempDir:    blobs.tmpDir(c.dataDir),
		BlobMaxSize:    blobs.uploadLimit,
		MaxImportSize:  c.maxImportSize,
		Proxy:          proxyCfg,
		Firehose:       fh,
		Version:        version(),
	}
	return cfg, nil
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
