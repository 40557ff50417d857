package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/eventlog"
)

// BenchmarkImport measures importRepo of a repo of PDSLOG_IMPORT_RECORDS
// records (default 10,000) into a `pdslog serve` child process: the time,
// records/s, and the server's peak RSS growth over its RSS just before the
// import (the import spools the CAR to disk: memory should not grow with
// the repo). The repo is built in-process with the PDS's own write path on
// a real did:plc registered in a real PLC directory.
func BenchmarkImport(b *testing.B) {
	n := 10_000
	if s := os.Getenv("PDSLOG_IMPORT_RECORDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	plcSrv := plcserver.Start(b)
	ctx := b.Context()
	src, err := pds.Open(b.TempDir(), &pds.Options{Command: "bench", Logger: discardLogger(), PLC: &plc.Client{URL: plcSrv.URL},
		Service: pds.Service{Hostname: "localhost", Port: 1, HandleDomains: []string{".test"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	a, _, err := src.CreateAccount(ctx, pds.NewAccount{Handle: "big.test", Email: "big@example.com", Password: "big-password-1"})
	if err != nil {
		b.Fatal(err)
	}
	rkeys := syntax.NewTIDClock(0)
	for done := 0; done < n; {
		writes := make([]commit.Write, min(200, n-done))
		for i := range writes {
			writes[i] = commit.Write{Action: eventlog.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(rkeys.Next().String()),
				Record: map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprintf("post number %d of a large repository, with about a tweet's worth of text in it", done+i),
					"createdAt": "2026-12-01T00:00:00.000Z"}, Validate: commit.ValidateSkip}
		}
		if _, err := src.ApplyWrites(ctx, a.DID, writes, nil); err != nil {
			b.Fatal(err)
		}
		done += len(writes)
	}
	head, err := src.Log.RepoHead(ctx, a.DID)
	if err != nil {
		b.Fatal(err)
	}
	carPath := filepath.Join(b.TempDir(), "repo.car")
	f, err := os.Create(carPath)
	if err != nil {
		b.Fatal(err)
	}
	if err := commit.ExportCAR(ctx, f, src.Blocks.Source(a.DID), head.Commit, head.Data); err != nil {
		b.Fatal(err)
	}
	f.Close()
	st, _ := os.Stat(carPath)
	key, err := src.SigningKey(ctx, a.DID)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		importOnce(b, plcSrv.URL, a.DID, key, carPath, n, st.Size())
	}
}

func importOnce(b *testing.B, plcURL string, did syntax.DID, key atcrypto.PrivateKey, carPath string, n int, size int64) {
	b.StopTimer()
	c := startChild(b, "--data-dir", b.TempDir(), "--plc-url", plcURL, "--invite-required=false", "--rate-limits=false")
	host := "http://" + c.addr
	tok, err := auth.ServiceJWT(key, did, "did:web:localhost", "com.atproto.server.createAccount", time.Now().Add(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	var acct struct{ AccessJwt string }
	resp := xrpcCall(b, "POST", host+"/xrpc/com.atproto.server.createAccount", tok, "application/json",
		bytes.NewReader([]byte(fmt.Sprintf(`{"did":%q,"handle":"big2.test","email":"big2@example.com","password":"big-password-2"}`, did))), &acct)
	if resp.StatusCode != 200 {
		b.Fatalf("createAccount: %d", resp.StatusCode)
	}
	f, err := os.Open(carPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	before := c.vm(b, "VmRSS")
	b.StartTimer()
	start := time.Now()
	resp = xrpcCall(b, "POST", host+"/xrpc/com.atproto.repo.importRepo", acct.AccessJwt, "application/vnd.ipld.car", f, nil)
	took := time.Since(start)
	b.StopTimer()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("importRepo: %d", resp.StatusCode)
	}
	peak := c.vm(b, "VmHWM")
	b.ReportMetric(float64(n)/took.Seconds(), "records/s")
	b.ReportMetric(took.Seconds(), "s/import")
	b.ReportMetric(float64(size)/1e6, "CAR-MB")
	b.ReportMetric(float64(peak-before)/1024, "peak-RSS-growth-MB")
	b.Logf("%d records, %.1f MB CAR: %s (%.0f records/s); server RSS %d MB before, peak %d MB", n, float64(size)/1e6, took.Round(time.Millisecond),
		float64(n)/took.Seconds(), before/1024, peak/1024)
}
