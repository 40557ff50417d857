package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

// Malformed input through the HTTP API: every case gets a 4xx with a named
// XRPC error, never a 5xx, and nothing reaches the log.
func TestMalformedInput(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	repo := a.DID.String()
	rec := func(record string) string {
		return `{"repo":"` + repo + `","collection":"app.bsky.feed.post","record":` + record + `}`
	}
	const post = `{"text":"x","createdAt":"2026-11-26T12:00:00.000Z"`
	tests := []struct {
		name, method, path, ct, body string
		status                       int
	}{
		{"oversized record body", "POST", "createRecord", "application/json", rec(post + `,"pad":"` + strings.Repeat("a", 1<<20) + `"}`), 413},
		{"oversized other body", "POST", "com.atproto.server.createSession", "application/json", `{"identifier":"` + strings.Repeat("a", 200<<10) + `"}`, 413},
		{"truncated", "POST", "createRecord", "application/json", `{"repo":"` + repo + `","collection":`, 400},
		{"wrong content type", "POST", "createRecord", "text/plain", rec(post + "}"), 400},
		{"no content type", "POST", "createRecord", "", rec(post + "}"), 400},
		{"not an object", "POST", "createRecord", "application/json", `[1,2,3]`, 400},
		{"trailing data", "POST", "createRecord", "application/json", rec(post+"}") + `{}`, 400},
		{"invalid utf-8 in a string", "POST", "createRecord", "application/json", rec(`{"text":"a` + "\xff\xfe" + `b","createdAt":"2026-11-26T12:00:00.000Z"}`), 400},
		{"invalid utf-8 in a key", "POST", "createRecord", "application/json", rec(post + `,"k` + "\xc3" + `":1}`), 400},
		{"deeply nested json", "POST", "createRecord", "application/json", rec(post + `,"deep":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000) + `}`), 400},
		{"deeper than the decoder allows", "POST", "createRecord", "application/json", rec(post + `,"deep":` + strings.Repeat(`[`, 20000) + strings.Repeat(`]`, 20000) + `}`), 400},
		{"huge array", "POST", "createRecord", "application/json", rec(post + `,"many":[` + strings.Repeat(`1,`, 300000) + `1]}`), 400},
		{"nul byte in a key", "POST", "createRecord", "application/json", rec(post + `,"a\u0000b":1}`), 400},
		{"nul byte in collection", "POST", "createRecord", "application/json", `{"repo":"` + repo + `","collection":"app.bsky.feed.po\u0000st","record":` + post + `}}`, 400},
		{"float in record", "POST", "createRecord", "application/json", rec(post + `,"n":1.5}`), 400},
		{"integer beyond int64", "POST", "createRecord", "application/json", rec(post + `,"n":123456789012345678901234567890}`), 400},
		{"record not an object", "POST", "createRecord", "application/json", rec(`"just a string"`), 400},
		{"blob ref with a dag-pb CIDv0", "POST", "createRecord", "application/json", rec(post + `,"embed":{"$type":"app.bsky.embed.images","images":[{"alt":"","image":{"$type":"blob","ref":{"$link":"QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"},"mimeType":"image/png","size":1}}]}}`), 400},
		{"$link that is not a CID", "POST", "createRecord", "application/json", rec(post + `,"l":{"$link":"nope"}}`), 400},
		{"$bytes that is not base64", "POST", "createRecord", "application/json", rec(post + `,"b":{"$bytes":"!!!"}}`), 400},
		{"swapRecord of the wrong codec", "POST", "com.atproto.repo.putRecord", "application/json", `{"repo":"` + repo + `","collection":"app.bsky.feed.post","rkey":"3jzfcijpj2z2a","swapRecord":"QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR","record":` + post + `}}`, 400},
		{"getRecord cid of the wrong codec", "GET", "com.atproto.repo.getRecord?repo=" + repo + "&collection=app.bsky.feed.post&rkey=3jzfcijpj2z2a&cid=QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR", "", "", 400},
		{"nul byte in a query param", "GET", "com.atproto.repo.listRecords?repo=" + repo + "&collection=app.bsky.feed%00post", "", "", 400},
		{"limit not a number", "GET", "com.atproto.repo.listRecords?repo=" + repo + "&collection=app.bsky.feed.post&limit=lots", "", "", 400},
		{"applyWrites with 201 writes", "POST", "com.atproto.repo.applyWrites", "application/json", applyWrites(repo, 201), 400},
	}
	head := env.Log.Head()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "createRecord" {
				path = "com.atproto.repo.createRecord"
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, env.Server.URL+"/xrpc/"+path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			req.Header.Set("Authorization", "Bearer "+a.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			var e struct{ Error, Message string }
			if err := json.NewDecoder(bytes.NewReader(out)).Decode(&e); err != nil || e.Error == "" || e.Message == "" {
				t.Fatalf("%d: body is not a named XRPC error: %.300s", resp.StatusCode, out)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s: %s), want %d", resp.StatusCode, e.Error, e.Message, tt.status)
			}
		})
	}
	if got := env.Log.Head(); got != head {
		t.Fatalf("malformed requests wrote to the log: head %d → %d", head, got)
	}
}

func applyWrites(repo string, n int) string {
	var w []string
	for range n {
		w = append(w, `{"$type":"com.atproto.repo.applyWrites#create","collection":"app.bsky.feed.post","value":{"text":"x","createdAt":"2026-11-26T12:00:00.000Z"}}`)
	}
	return `{"repo":"` + repo + `","writes":[` + strings.Join(w, ",") + `]}`
}
