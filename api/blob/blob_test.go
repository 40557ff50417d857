package blob_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/projections/blobs"
)

// png is the start of a real PNG file: enough for content sniffing.
func png(n int) []byte {
	b := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, n)...)
	for i := range n {
		b[16+i] = byte(i * 7)
	}
	return b
}

type blobOut struct {
	Blob struct {
		Type     string            `json:"$type"`
		Ref      map[string]string `json:"ref"`
		MimeType string            `json:"mimeType"`
		Size     int64             `json:"size"`
	} `json:"blob"`
}

// upload posts body to uploadBlob; length < 0 sends it chunked (no
// Content-Length).
func upload(t *testing.T, env *apitest.Env, token, contentType string, body []byte, chunked bool) (int, []byte) {
	t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length from net/http
	}
	req, err := http.NewRequest("POST", env.Server.URL+"/xrpc/com.atproto.repo.uploadBlob", rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func mustUpload(t *testing.T, env *apitest.Env, a *apitest.Account, ct string, body []byte) blobOut {
	t.Helper()
	st, out := upload(t, env, a.Token, ct, body, false)
	if st != 200 {
		t.Fatalf("upload: %d %s", st, out)
	}
	var b blobOut
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func getBlob(t *testing.T, env *apitest.Env, did syntax.DID, c string, rng string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", env.Server.URL+"/xrpc/com.atproto.sync.getBlob?"+url.Values{"did": {did.String()}, "cid": {c}}.Encode(), nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestUploadAndGetBlob(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	body := png(5000)
	b := mustUpload(t, env, a, "image/jpeg", body)
	if b.Blob.Type != "blob" || b.Blob.MimeType != "image/png" || b.Blob.Size != int64(len(body)) || !strings.HasPrefix(b.Blob.Ref["$link"], "bafkrei") {
		t.Fatalf("upload answer %+v (the bytes are a PNG whatever the header says)", b)
	}
	c := b.Blob.Ref["$link"]
	// Same bytes again: same CID, one stored blob, one index entry.
	if again := mustUpload(t, env, a, "image/png", body); again.Blob.Ref["$link"] != c {
		t.Fatalf("re-upload gave %s, want %s", again.Blob.Ref["$link"], c)
	}
	st, err := env.BlobIndex.Get(t.Context(), a.DID, cid.MustParse(c))
	if err != nil || !st.Uploaded || st.DeclaredMime != "image/png" && st.DeclaredMime != "image/jpeg" {
		t.Fatalf("index: %+v %v", st, err)
	}

	resp, got := getBlob(t, env, a.DID, c, "")
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("getBlob: %d, %d bytes (want %d identical)", resp.StatusCode, len(got), len(body))
	}
	for k, want := range map[string]string{
		"Content-Type":            "image/png",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; sandbox",
		"Content-Length":          fmt.Sprint(len(body)),
	} {
		if g := resp.Header.Get(k); g != want {
			t.Errorf("%s = %q, want %q", k, g, want)
		}
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
		t.Errorf("Content-Disposition = %q", cd)
	}

	ranges := []struct {
		hdr        string
		status     int
		start, end int // inclusive
		contentRng string
	}{
		{"bytes=10-19", 206, 10, 19, fmt.Sprintf("bytes 10-19/%d", len(body))},
		{"bytes=4990-", 206, 4990, len(body) - 1, fmt.Sprintf("bytes 4990-%d/%d", len(body)-1, len(body))},
		{"bytes=-16", 206, len(body) - 16, len(body) - 1, fmt.Sprintf("bytes %d-%d/%d", len(body)-16, len(body)-1, len(body))},
		{"bytes=100-999999", 206, 100, len(body) - 1, fmt.Sprintf("bytes 100-%d/%d", len(body)-1, len(body))},
		{fmt.Sprintf("bytes=%d-", len(body)), 416, 0, -1, fmt.Sprintf("bytes */%d", len(body))},
		{"bytes=0-1,5-6", 200, 0, len(body) - 1, ""},
	}
	for _, r := range ranges {
		resp, got := getBlob(t, env, a.DID, c, r.hdr)
		if resp.StatusCode != r.status || resp.Header.Get("Content-Range") != r.contentRng {
			t.Errorf("%s: %d %q, want %d %q", r.hdr, resp.StatusCode, resp.Header.Get("Content-Range"), r.status, r.contentRng)
			continue
		}
		if r.status != 416 && !bytes.Equal(got, body[r.start:r.end+1]) {
			t.Errorf("%s: wrong bytes", r.hdr)
		}
	}

	errs := []struct {
		did, cid, want string
	}{
		{a.DID.String(), "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy", "BlobNotFound"},
		{"did:plc:nobody000000000000000000", c, "RepoNotFound"},
		{"not-a-did", c, "InvalidRequest"},
		{a.DID.String(), "not-a-cid", "InvalidRequest"},
	}
	for _, e := range errs {
		r := env.Do("GET", "/xrpc/com.atproto.sync.getBlob", url.Values{"did": {e.did}, "cid": {e.cid}}, "", nil)
		if r.Status != 400 || r.ErrorName() != e.want {
			t.Errorf("getBlob(%s, %s): %d %s, want 400 %s", e.did, e.cid, r.Status, r.Body, e.want)
		}
	}
	if st, out := upload(t, env, "", "image/png", body, false); st != 401 {
		t.Errorf("upload without auth: %d %s", st, out)
	}
}

func TestUploadLimit(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	big := png(apitest.BlobMaxSize) // just over the limit
	for _, chunked := range []bool{false, true} {
		st, out := upload(t, env, a.Token, "image/png", big, chunked)
		var e struct{ Error string }
		_ = json.Unmarshal(out, &e)
		if st != http.StatusRequestEntityTooLarge || e.Error != "PayloadTooLarge" {
			t.Fatalf("oversized (chunked %v): %d %s", chunked, st, out)
		}
	}
	// Nothing was kept: no temp file, no index entry, nothing in the log.
	if ents, _ := os.ReadDir(env.BlobTempDir); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
	if bs, err := env.BlobIndex.List(t.Context(), a.DID, "", 10, nil); err != nil || len(bs) != 0 {
		t.Fatalf("index after refused uploads: %+v %v", bs, err)
	}
	// Exactly the limit is fine.
	mustUpload(t, env, a, "image/png", big[:apitest.BlobMaxSize])
}

func post(env *apitest.Env, a *apitest.Account, ref map[string]any) *apitest.Response {
	return env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, map[string]any{
		"repo": a.DID, "collection": "app.bsky.feed.post",
		"record": map[string]any{"text": "pic", "createdAt": "2026-11-26T12:00:00.000Z",
			"embed": map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "", "image": ref}}}},
	})
}

func ref(c, mime string, size int64) map[string]any {
	return map[string]any{"$type": "blob", "ref": map[string]any{"$link": c}, "mimeType": mime, "size": size}
}

func TestRecordBlobReferences(t *testing.T) {
	env := apitest.New(t)
	a, b := env.CreateAccount(), env.CreateAccount()
	up := mustUpload(t, env, a, "image/png", png(300))
	c, size := up.Blob.Ref["$link"], up.Blob.Size
	other := mustUpload(t, env, b, "image/png", png(400)).Blob.Ref["$link"]

	tests := []struct {
		name   string
		ref    map[string]any
		status int
		err    string
	}{
		{"never uploaded", ref("bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy", "image/png", 10), 400, "BlobNotFound"},
		{"another account's blob", ref(other, "image/png", 404+16), 400, "BlobNotFound"},
		{"wrong mime", ref(c, "image/jpeg", size), 400, "InvalidMimeType"},
		{"wrong size", ref(c, "image/png", size+1), 400, "InvalidRequest"},
		{"matching", ref(c, "image/png", size), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(env, a, tt.ref)
			if r.Status != tt.status || (tt.err != "" && r.ErrorName() != tt.err) {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.status, tt.err)
			}
		})
	}
	// listBlobs names the referenced blob only.
	r := env.Do("GET", "/xrpc/com.atproto.sync.listBlobs", url.Values{"did": {a.DID.String()}}, "", nil)
	var lb struct{ CIDs []string }
	r.JSON(t, &lb)
	if r.Status != 200 || len(lb.CIDs) != 1 || lb.CIDs[0] != c {
		t.Fatalf("listBlobs: %d %s", r.Status, r.Body)
	}
	r = env.Do("GET", "/xrpc/com.atproto.repo.listMissingBlobs", nil, a.Token, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"blobs":[]`) {
		t.Fatalf("listMissingBlobs: %d %s", r.Status, r.Body)
	}
}

// The collector deletes what no record references after the grace, keeps
// what is referenced, and never deletes a blob a concurrent write is
// committing a reference to.
func TestCollector(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	ctx := context.Background()
	kept := mustUpload(t, env, a, "image/png", png(10))
	orphan := mustUpload(t, env, a, "image/png", png(20))
	if r := post(env, a, ref(kept.Blob.Ref["$link"], "image/png", kept.Blob.Size)); r.Status != 200 {
		t.Fatalf("post: %d %s", r.Status, r.Body)
	}
	g := env.PDS // the collector, with the default grace (an hour)
	if n, err := g.CollectBlobs(ctx); err != nil || n != 0 {
		t.Fatalf("inside the grace: %d deleted, %v", n, err)
	}
	env.Clock.Add(2 * time.Hour)
	env.Renew(a) // past the access token's lifetime too
	if n, err := g.CollectBlobs(ctx); err != nil || n != 1 {
		t.Fatalf("after the grace: %d deleted, %v; want the orphan", n, err)
	}
	if resp, _ := getBlob(t, env, a.DID, orphan.Blob.Ref["$link"], ""); resp.StatusCode != 400 {
		t.Fatalf("collected blob still served: %d", resp.StatusCode)
	}
	if _, err := env.BlobStore.Open(ctx, a.DID, cid.MustParse(orphan.Blob.Ref["$link"]), 0, -1); err == nil {
		t.Fatal("collected blob's bytes still stored")
	}
	if resp, got := getBlob(t, env, a.DID, kept.Blob.Ref["$link"], ""); resp.StatusCode != 200 || len(got) != int(kept.Blob.Size) {
		t.Fatalf("referenced blob: %d", resp.StatusCode)
	}

	// Races: each round uploads a blob, lets its grace pass, then a write
	// referencing it and the collector run at once. Either the write wins
	// (the blob stays, served) or the collector does (the write is refused
	// with BlobNotFound); never a committed reference to deleted bytes.
	for i := range 15 {
		up := mustUpload(t, env, a, "image/png", png(1000+i))
		c := up.Blob.Ref["$link"]
		env.Clock.Add(2 * time.Hour)
		env.Renew(a) // past the access token's lifetime too
		var wg sync.WaitGroup
		var r *apitest.Response
		wg.Go(func() { r = post(env, a, ref(c, "image/png", up.Blob.Size)) })
		wg.Go(func() {
			if _, err := g.CollectBlobs(ctx); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		resp, _ := getBlob(t, env, a.DID, c, "")
		switch {
		case r.Status == 200 && resp.StatusCode == 200:
		case r.Status == 400 && r.ErrorName() == "BlobNotFound" && resp.StatusCode == 400:
		default:
			t.Fatalf("round %d: write %d %s, blob served %d", i, r.Status, r.Body, resp.StatusCode)
		}
	}
	// Dereferenced: deleting the only post makes the kept blob collectable
	// after a fresh grace.
	var list struct{ Records []struct{ URI string } }
	env.Do("GET", "/xrpc/com.atproto.repo.listRecords", url.Values{"repo": {a.DID.String()}, "collection": {"app.bsky.feed.post"}, "limit": {"100"}}, "", nil).JSON(t, &list)
	for _, rec := range list.Records {
		u, _ := syntax.ParseATURI(rec.URI)
		if r := env.Do("POST", "/xrpc/com.atproto.repo.deleteRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": u.RecordKey()}); r.Status != 200 {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
	}
	if n, err := g.CollectBlobs(ctx); err != nil || n != 0 {
		t.Fatalf("right after dereferencing: %d deleted, %v", n, err)
	}
	env.Clock.Add(2 * time.Hour)
	env.Renew(a) // past the access token's lifetime too
	if _, err := g.CollectBlobs(ctx); err != nil {
		t.Fatal(err)
	}
	if bs, err := env.BlobIndex.List(ctx, a.DID, "", 100, func(*blobs.Blob) bool { return true }); err != nil || len(bs) != 0 {
		t.Fatalf("blobs left after every reference went: %d %v", len(bs), err)
	}
}

// Uploads are limited per client IP: the reference's 1000 a day, and 30 a
// minute against bursts.
func TestUploadRateLimit(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	for i := range 30 {
		if st, out := upload(t, env, a.Token, "image/png", png(i+1), false); st != 200 {
			t.Fatalf("upload %d: %d %s", i+1, st, out)
		}
	}
	st, out := upload(t, env, a.Token, "image/png", png(99), false)
	if st != http.StatusTooManyRequests || !strings.Contains(string(out), "RateLimitExceeded") {
		t.Fatalf("31st upload in a minute: %d %s", st, out)
	}
	env.Clock.Add(61 * time.Second)
	if st, out := upload(t, env, a.Token, "image/png", png(100), false); st != 200 {
		t.Fatalf("after the minute: %d %s", st, out)
	}
}

// A deactivated account's blobs are refused to others with the lexicon's
// error, and still served to the owner.
func TestGetBlobOfDeactivatedAccount(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	c := mustUpload(t, env, a, "image/png", png(50)).Blob.Ref["$link"]
	if r := env.Do("POST", "/xrpc/com.atproto.server.deactivateAccount", nil, a.Token, map[string]any{}); r.Status != 200 {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	q := url.Values{"did": {a.DID.String()}, "cid": {c}}
	if r := env.Do("GET", "/xrpc/com.atproto.sync.getBlob", q, "", nil); r.Status != 400 || r.ErrorName() != "RepoDeactivated" {
		t.Fatalf("anonymous: %d %s", r.Status, r.Body)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.sync.getBlob", q, a.Token, nil); r.Status != 200 {
		t.Fatalf("owner: %d %.200s", r.Status, r.Body)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.sync.listBlobs", url.Values{"did": {a.DID.String()}}, "", nil); r.Status != 400 || r.ErrorName() != "RepoDeactivated" {
		t.Fatalf("listBlobs anonymous: %d %s", r.Status, r.Body)
	}
}

// An admin takedown of a blob quarantines it: the bytes are kept but not
// served, getSubjectStatus reports it, and reversing it serves it again.
func TestBlobQuarantine(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	c := mustUpload(t, env, a, "image/png", png(64)).Blob.Ref["$link"]
	admin := apitest.AdminAuth(apitest.AdminPassword)
	subject := map[string]any{"$type": "com.atproto.admin.defs#repoBlobRef", "did": a.DID, "cid": c}
	takedown := func(applied bool) {
		t.Helper()
		r := env.Do("POST", "/xrpc/com.atproto.admin.updateSubjectStatus", nil, admin,
			map[string]any{"subject": subject, "takedown": map[string]any{"applied": applied, "ref": "case-1"}})
		if r.Status != 200 {
			t.Fatalf("updateSubjectStatus(%v): %d %s", applied, r.Status, r.Body)
		}
	}
	status := func() bool {
		t.Helper()
		r := env.Do("GET", "/xrpc/com.atproto.admin.getSubjectStatus", url.Values{"did": {a.DID.String()}, "blob": {c}}, admin, nil)
		var out struct{ Takedown struct{ Applied bool } }
		r.JSON(t, &out)
		if r.Status != 200 {
			t.Fatalf("getSubjectStatus: %d %s", r.Status, r.Body)
		}
		return out.Takedown.Applied
	}
	takedown(true)
	if resp, _ := getBlob(t, env, a.DID, c, ""); resp.StatusCode != 400 || !status() {
		t.Fatalf("quarantined blob: served %d, status applied %v", resp.StatusCode, status())
	}
	if _, err := env.BlobStore.Stat(t.Context(), a.DID, cid.MustParse(c)); err != nil {
		t.Fatalf("quarantine must keep the bytes: %v", err)
	}
	if r := env.Do("POST", "/xrpc/com.atproto.admin.updateSubjectStatus", nil, a.Token,
		map[string]any{"subject": subject, "takedown": map[string]any{"applied": false}}); r.Status != 401 {
		t.Fatalf("a user lifting a takedown: %d", r.Status)
	}
	takedown(false)
	if resp, got := getBlob(t, env, a.DID, c, ""); resp.StatusCode != 200 || len(got) != 64+16 || status() {
		t.Fatalf("restored blob: %d, %d bytes", resp.StatusCode, len(got))
	}
}
