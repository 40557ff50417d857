package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
)

// Every serve setting is checked before anything is opened, and a mistake
// is reported by the env name the operator wrote, with exit status 2.
func TestServeRefusesBadSettings(t *testing.T) {
	tests := []struct {
		env, value string
		extra      map[string]string
		want       string
	}{
		{"PDS_PORT", "not-a-port", nil, "PDS_PORT"},
		{"PDS_PORT", "70000", nil, "PDS_PORT: bad port 70000"},
		{"PDS_INVITE_REQUIRED", "maybe", nil, "PDS_INVITE_REQUIRED"},
		{"PDS_DEV_MODE", "sometimes", nil, "PDS_DEV_MODE"},
		{"PDS_HOSTNAME", "127.0.0.1", nil, "PDS_HOSTNAME"},
		{"PDS_HOSTNAME", "not a host", nil, "PDS_HOSTNAME"},
		{"PDS_SERVICE_HANDLE_DOMAINS", ".bad_domain", nil, "PDS_SERVICE_HANDLE_DOMAINS"},
		{"PDS_SERVICE_HANDLE_DOMAINS", ".test", map[string]string{"PDS_HOSTNAME": "pds.example.com"}, "reserved top-level domain"},
		{"PDS_DID_PLC_URL", "plc.directory", nil, "PDS_DID_PLC_URL"},
		{"PDS_DID_PLC_URL", "ftp://plc.directory", nil, "PDS_DID_PLC_URL"},
		{"PDSLOG_CORS_ORIGINS", "https://app.example.com/path", nil, "PDSLOG_CORS_ORIGINS"},
		{"PDSLOG_CORS_ORIGINS", "app.example.com", nil, "PDSLOG_CORS_ORIGINS"},
		{"PDS_JWT_SECRET", "short", nil, "PDS_JWT_SECRET"},
		{"PDS_CRAWLERS", "bsky.network", nil, "PDS_CRAWLERS"},
		{"PDS_BLOB_UPLOAD_LIMIT", "0", nil, "PDS_BLOB_UPLOAD_LIMIT"},
		{"PDS_BLOB_UPLOAD_LIMIT", "big", nil, "PDS_BLOB_UPLOAD_LIMIT"},
		{"PDSLOG_BLOB_GRACE", "soon", nil, "PDSLOG_BLOB_GRACE"},
		{"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "zz", nil, "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: not hex"},
		{"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "00", nil, "not a K-256 private key"},
		{"PDSLOG_SEQ_FLOOR", "-1", nil, "PDSLOG_SEQ_FLOOR"},
		{"PDSLOG_TRUSTED_PROXIES", "10.0.0.0/33", nil, "PDSLOG_TRUSTED_PROXIES"},
		{"PDSLOG_TRUSTED_PROXIES", "proxy.example.com", nil, "PDSLOG_TRUSTED_PROXIES"},
		{"PDSLOG_IDLE_TIMEOUT", "0", nil, "PDSLOG_IDLE_TIMEOUT: must be positive"},
		{"PDSLOG_BODY_TIMEOUT", "soon", nil, "PDSLOG_BODY_TIMEOUT"},
		{"PDSLOG_UPLOAD_TIMEOUT", "-1s", nil, "PDSLOG_UPLOAD_TIMEOUT: must be positive"},
		{"PDSLOG_MAX_CONNS_PER_IP", "-1", nil, "PDSLOG_MAX_CONNS_PER_IP: must not be negative"},
		{"PDSLOG_FIREHOSE_MAX_PER_IP", "-1", nil, "PDSLOG_FIREHOSE_MAX_PER_IP: must not be negative"},
		{"PDS_EMAIL_SMTP_URL", "mail.example.com:587", nil, "PDS_EMAIL_SMTP_URL"},
		{"PDS_MAX_REPO_IMPORT_SIZE", "0", nil, "PDS_MAX_REPO_IMPORT_SIZE"},
		{"PDS_ACCEPTING_REPO_IMPORTS", "perhaps", nil, "PDS_ACCEPTING_REPO_IMPORTS"},
		{"PDS_EMAIL_SMTP_URL", "https://mail.example.com", nil, "PDS_EMAIL_SMTP_URL"},
		{"PDS_MODERATION_EMAIL_SMTP_URL", "smtp://", nil, "PDS_MODERATION_EMAIL_SMTP_URL"},
		{"PDS_EMAIL_FROM_ADDRESS", "not an address", nil, "PDS_EMAIL_FROM_ADDRESS"},
		{"PDS_MODERATION_EMAIL_ADDRESS", "x\r\nBcc: y@evil.example", nil, "PDS_MODERATION_EMAIL_ADDRESS"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("PDS_DATA_DIRECTORY", dir)
			t.Setenv(tt.env, tt.value)
			for k, v := range tt.extra {
				t.Setenv(k, v)
			}
			code, out, errOut := runCmd(t, t.Context(), "serve")
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q), stdout %q", code, exitUsage, errOut, tt.want, out)
			}
			if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
				t.Fatalf("a refused start touched the data dir: %v %v", ents, err)
			}
		})
	}
}

// PDS_DEV_MODE lets a non-localhost server offer handles under a reserved
// top-level domain (for staging setups), which is refused without it.
func TestServeDevModeAllowsReservedHandleDomain(t *testing.T) {
	t.Setenv("PDS_DEV_MODE", "true")
	addr, _, stop := startServe(t, "--data-dir", t.TempDir(), "--hostname", "pds.example.com", "--bind", "127.0.0.1",
		"--handle-domains", ".test", "--invite-required=false")
	defer stop()
	resp, err := http.Get("http://" + addr + "/xrpc/com.atproto.server.describeServer")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `".test"`) {
		t.Fatalf("describeServer: %d %s", resp.StatusCode, b)
	}
}

// PDS_CRAWLERS: serve asks each relay to crawl it on start.
func TestServeRequestsCrawlOnStart(t *testing.T) {
	got := make(chan string, 1)
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Hostname string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		got <- r.URL.Path + " " + in.Hostname
	}))
	defer relay.Close()
	t.Setenv("PDS_CRAWLERS", relay.URL)
	_, _, stop := startServe(t, "--data-dir", t.TempDir())
	defer stop()
	if g := <-got; g != "/xrpc/com.atproto.sync.requestCrawl localhost" {
		t.Fatalf("relay got %q", g)
	}
}

// Secrets set in the environment never show in --help (flag defaults do).
func TestHelpDoesNotPrintSecrets(t *testing.T) {
	secrets := map[string]string{
		"PDS_ADMIN_PASSWORD":                        "admin-secret-value-1",
		"PDS_JWT_SECRET":                            "jwt-secret-value-22",
		"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
		"PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY":        "s3-secret-value-333",
		"PDS_EMAIL_SMTP_URL":                        "smtp://user:smtp-secret-4444@mail.example.com",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	code, out, errOut := runCmd(t, t.Context(), "serve", "--help")
	if code != exitOK || !strings.Contains(out+errOut, "PDS_ADMIN_PASSWORD") {
		t.Fatalf("serve --help: exit %d %q", code, errOut)
	}
	for k, v := range secrets {
		if strings.Contains(out+errOut, v) {
			t.Errorf("--help prints %s's value", k)
		}
	}
}

// PDS_RATE_LIMITS_ENABLED=false turns the per-IP upload limit (30 a minute
// with limits on) off, for load tests and trusted single-user servers.
func TestServeRateLimitsOff(t *testing.T) {
	plcSrv := plcserver.Start(t)
	t.Setenv("PDS_RATE_LIMITS_ENABLED", "false")
	addr, _, stop := startServe(t, "--data-dir", t.TempDir(), "--plc-url", plcSrv.URL, "--invite-required=false")
	defer stop()
	base := "http://" + addr + "/xrpc/"
	resp, err := http.Post(base+"com.atproto.server.createAccount", "application/json",
		strings.NewReader(`{"handle":"load.test","email":"l@example.com","password":"hunter22hunter"}`))
	if err != nil {
		t.Fatal(err)
	}
	var acct struct{ AccessJwt string }
	_ = json.NewDecoder(resp.Body).Decode(&acct)
	resp.Body.Close()
	for i := range 40 {
		req, _ := http.NewRequest("POST", base+"com.atproto.repo.uploadBlob", strings.NewReader(fmt.Sprintf("blob %d", i)))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+acct.AccessJwt)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("upload %d with rate limits off: %d", i+1, resp.StatusCode)
		}
	}
}
