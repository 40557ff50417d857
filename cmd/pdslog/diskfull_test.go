package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/projections/testenv"
)

// requireTmpfsEnv makes a missing tmpfs a failure instead of a skip (.ci/run
// sets it: CI runs as root, where mounting works).
const requireTmpfsEnv = "PDSLOG_REQUIRE_TMPFS"

// mountTinyDisk mounts a tmpfs of size bytes under the test's temp dir: a
// real filesystem that fills up.
func mountTinyDisk(t *testing.T, size int64) string {
	t.Helper()
	testenv.Slow(t, "mounts a tmpfs")
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs here (needs root): %v: %s", err, out)
		if os.Getenv(requireTmpfsEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file into dir until only leave bytes are free.
func fillDisk(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * int64(st.Bsize)
	if avail <= leave {
		t.Fatalf("only %d bytes free before filling, want more than %d", avail, leave)
	}
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, zeros{}, avail-leave); err != nil {
		t.Fatalf("filling the disk: %v", err)
	}
	return path
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// The data dir's disk fills up under a running server: writes and uploads
// answer 503 with a clear message and Retry-After, nothing is
// acknowledged or half-written, reads keep working; once space is freed
// the same server process accepts writes again, chaining from the last
// acknowledged commit.
func TestServeDiskFullRecovers(t *testing.T) {
	disk := mountTinyDisk(t, 96<<20)
	plcSrv := plcserver.Start(t)
	const reserve = 16 << 20
	addr, _, stop := startServe(t, "--data-dir", filepath.Join(disk, "data"), "--plc-url", plcSrv.URL,
		"--invite-required=false", "--rate-limits=false", "--min-free-space", fmt.Sprint(reserve))
	defer func() { stop() }()
	base := "http://" + addr + "/xrpc/"
	type answer struct {
		status int
		header http.Header
		body   map[string]any
	}
	call := func(method, nsid, token, ct string, body string) answer {
		t.Helper()
		var a answer
		resp := xrpcCall(t, method, base+nsid, token, ct, strings.NewReader(body), &a.body)
		a.status, a.header = resp.StatusCode, resp.Header
		return a
	}
	var acct struct{ DID, AccessJwt string }
	a := call("POST", "com.atproto.server.createAccount", "", "application/json",
		`{"handle":"full.test","email":"f@example.com","password":"hunter22hunter"}`)
	if a.status != 200 {
		t.Fatalf("createAccount: %d %v", a.status, a.body)
	}
	b, _ := json.Marshal(a.body)
	_ = json.Unmarshal(b, &acct)
	post := func(text string) answer {
		rec, _ := json.Marshal(map[string]any{"repo": acct.DID, "collection": "app.bsky.feed.post",
			"record": map[string]any{"text": text, "createdAt": "2026-11-27T12:00:00.000Z"}})
		return call("POST", "com.atproto.repo.createRecord", acct.AccessJwt, "application/json", string(rec))
	}
	count := func() int {
		t.Helper()
		a := call("GET", "com.atproto.repo.listRecords?"+url.Values{"repo": {acct.DID}, "collection": {"app.bsky.feed.post"}, "limit": {"100"}}.Encode(), "", "", "")
		if a.status != 200 {
			t.Fatalf("listRecords: %d %v", a.status, a.body)
		}
		return len(a.body["records"].([]any))
	}
	var lastRev string
	for i := range 5 {
		a := post(fmt.Sprintf("before %d", i))
		if a.status != 200 {
			t.Fatalf("post %d: %d %v", i, a.status, a.body)
		}
		lastRev = a.body["commit"].(map[string]any)["rev"].(string)
	}

	filler := fillDisk(t, disk, reserve/2)
	wantFull := func(what string, a answer) {
		t.Helper()
		if a.status != http.StatusServiceUnavailable || a.body["error"] != "ServiceUnavailable" ||
			!strings.Contains(fmt.Sprint(a.body["message"]), "disk is full") || a.header.Get("Retry-After") == "" {
			t.Fatalf("%s on a full disk: %d %v (Retry-After %q), want 503 ServiceUnavailable about the full disk",
				what, a.status, a.body, a.header.Get("Retry-After"))
		}
	}
	for i := range 3 {
		wantFull(fmt.Sprintf("createRecord %d", i), post("refused"))
	}
	wantFull("uploadBlob", call("POST", "com.atproto.repo.uploadBlob", acct.AccessJwt, "image/png", "\x89PNG\r\n\x1a\nxxxx"))
	// Reads still work and show only what was acknowledged.
	if n := count(); n != 5 {
		t.Fatalf("listRecords on a full disk shows %d posts, want the 5 acknowledged", n)
	}
	lc := call("GET", "com.atproto.sync.getLatestCommit?did="+acct.DID, "", "", "")
	if lc.status != 200 || lc.body["rev"] != lastRev {
		t.Fatalf("getLatestCommit on a full disk: %d %v, want rev %s", lc.status, lc.body, lastRev)
	}

	// Space returns: the same process takes writes again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	a = post("after")
	if a.status != 200 {
		t.Fatalf("post after space returned: %d %v", a.status, a.body)
	}
	rev := a.body["commit"].(map[string]any)["rev"].(string)
	if rev <= lastRev {
		t.Fatalf("rev after recovery %s does not follow %s", rev, lastRev)
	}
	if n := count(); n != 6 {
		t.Fatalf("after recovery %d posts, want 6", n)
	}
	if a := call("POST", "com.atproto.repo.uploadBlob", acct.AccessJwt, "image/png", "\x89PNG\r\n\x1a\nxxxx"); a.status != 200 {
		t.Fatalf("upload after recovery: %d %v", a.status, a.body)
	}
	stop()
	stop = func() {}
	// The log is intact: the verifier walks every commit chain.
	if code, stdout, stderr := runCmd(t, t.Context(), "replay", "--data-dir", filepath.Join(disk, "data"), "--verify"); code != 0 {
		t.Fatalf("replay --verify: %d\n%s\n%s", code, stdout, stderr)
	}
}

// The log's disk stops syncing (fsync EIO) under a running server: the
// write answers 503 and is not acknowledged; the server drains, answers
// 503 while the data dir cannot be reopened, and once the disk syncs again
// reopens it by itself — same process, same port — with every
// acknowledged write there and the next one chaining from it.
func TestServeStorageFailureRecovers(t *testing.T) {
	defer func(d time.Duration) { recoverPoll = d }(recoverPoll)
	recoverPoll = 50 * time.Millisecond
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo {
			return fmt.Errorf("injected fsync failure: %w", syscall.EIO)
		}
		return nil
	})}
	plcSrv := plcserver.Start(t)
	data := t.TempDir()
	logs := &eventlogtest.SyncBuffer{}
	addr, _, stop := startServeWith(t, func(c *serveCommand) { c.logFS, c.stderr = errorfs.Wrap(vfs.Default, toggle), logs },
		"--data-dir", data, "--plc-url", plcSrv.URL, "--invite-required=false", "--rate-limits=false")
	defer func() { stop() }()
	cc := &crashClient{t: t, http: &http.Client{Timeout: 10 * time.Second}}
	base := "http://" + addr
	var acct struct{ DID, AccessJwt string }
	if st, err := cc.call(base, "POST", "com.atproto.server.createAccount", "", nil, map[string]any{
		"handle": "fail.test", "email": "x@example.com", "password": "hunter22hunter"}, &acct); err != nil || st != 200 {
		t.Fatalf("createAccount: %d %v", st, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var acked []*crashAck
	for i := range 5 {
		ack, st, err := cc.write(base, acct.DID, acct.AccessJwt, rng, i)
		if ack == nil {
			t.Fatalf("write %d: %d %v", i, st, err)
		}
		acked = append(acked, ack)
	}

	toggle.On()
	for i := range 5 {
		if ack, st, err := cc.write(base, acct.DID, acct.AccessJwt, rng, 100+i); ack != nil || err != nil || st != http.StatusServiceUnavailable {
			t.Fatalf("write %d while the disk cannot sync: %d %v (acknowledged: %v), want 503", i, st, err, ack != nil)
		}
	}
	// The server notices, drains and answers from its recovery loop; it
	// keeps failing to reopen while the disk still cannot sync.
	for wait := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(base + "/xrpc/_health")
		if err != nil {
			t.Fatal(err)
		}
		var body xrpcError
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || body.Error != "ServiceUnavailable" {
			t.Fatalf("_health with a failed log: %d %+v, want 503 ServiceUnavailable", resp.StatusCode, body)
		}
		if strings.Contains(body.Message, "recovering from a storage failure") {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("the server did not start recovering within 10 s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(10 * recoverPoll)

	toggle.Off()
	deadline := time.Now().Add(30 * time.Second)
	var ack *crashAck
	for {
		var st int
		var err error
		if ack, st, err = cc.write(base, acct.DID, acct.AccessJwt, rng, 1000); ack != nil {
			break
		}
		if err != nil || st != http.StatusServiceUnavailable {
			t.Fatalf("write while recovering: %d %v, want 503", st, err)
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not recover within 30 s of the disk syncing again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, a := range acked {
		for uri, want := range a.records {
			parts := strings.Split(strings.TrimPrefix(uri, "at://"), "/")
			var got struct{ CID string }
			st, err := cc.call(base, "GET", "com.atproto.repo.getRecord", "", url.Values{"repo": {parts[0]}, "collection": {parts[1]}, "rkey": {parts[2]}}, nil, &got)
			if err != nil || st != 200 || got.CID != want {
				t.Fatalf("acknowledged %s (cid %s) after recovery: %d %q %v", uri, want, st, got.CID, err)
			}
		}
	}
	if last := acked[len(acked)-1]; ack.rev <= last.rev {
		t.Fatalf("rev after recovery %s not after the last acknowledged %s", ack.rev, last.rev)
	}
	// The path taken: the failure was seen, reopening failed while the
	// disk could not sync, then succeeded.
	for _, msg := range []string{"event log failed: draining", "storage not usable yet", "data dir reopened after a storage failure"} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("server log lacks %q:\n%s", msg, logs.String())
		}
	}
	stop()
	stop = func() {}
	if code, stdout, stderr := runCmd(t, t.Context(), "replay", "--data-dir", data, "--verify"); code != 0 {
		t.Fatalf("replay --verify: %d\n%s\n%s", code, stdout, stderr)
	}
}

type xrpcError struct{ Error, Message string }
