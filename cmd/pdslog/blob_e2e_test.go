package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/eventlog/blobstore/disk"
	"github.com/pdslog/pdslog/projections/testenv"
)

// serveChildEnv makes the test binary run `pdslog serve` with these
// arguments (separated by \x1f), printing "listening ADDR" once it serves:
// a real server process the test can measure and SIGKILL.
const serveChildEnv = "PDSLOG_SERVE_CHILD_ARGS"

// serveChildNofileEnv, if set, is the RLIMIT_NOFILE (soft) the serve child
// sets on itself before serving (the Go runtime raises the soft limit to
// the hard one at start, so it cannot be inherited).
const serveChildNofileEnv = "PDSLOG_SERVE_CHILD_NOFILE"

func serveChild(args []string) {
	if v := os.Getenv(serveChildNofileEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		var lim syscall.Rlimit
		if err == nil {
			err = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
		if err == nil {
			lim.Cur = n
			err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve child: RLIMIT_NOFILE:", err)
			os.Exit(1)
		}
	}
	ready := make(chan string, 1)
	go func() { fmt.Printf("listening %s\n", <-ready) }()
	cmd := &serveCommand{stdout: io.Discard, stderr: os.Stderr, ready: ready}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := cmd.run(ctx, args); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// child is a serve process.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t testing.TB, args ...string) *child {
	t.Helper()
	return startChildEnv(t, nil, io.Discard, args...)
}

// startChildEnv is startChild with extra environment variables for the
// child and its stderr (its log) going to stderr.
func startChildEnv(t testing.TB, env []string, stderr io.Writer, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), serveChildEnv+"="+strings.Join(append([]string{"--port", "0"}, args...), "\x1f"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("serve child: %q %v", line, err)
	}
	return &child{cmd: cmd, addr: addr}
}

// vm reads a /proc/PID/status field in KiB (VmRSS, VmHWM).
func (c *child) vm(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		testenv.Skip(t, "no /proc: %v", err) // only where the OS has none; CI is Linux
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	t.Fatalf("%s not in /proc status", field)
	return 0
}

// stream is n pseudo-random bytes, hashed as they are read.
type stream struct {
	n, sent int64
	rng     *rand.ChaCha8
	sum     interface {
		io.Writer
		Sum([]byte) []byte
	}
	stopAt  int64         // if > 0, after this many bytes: close reached, wait for block, fail
	reached chan struct{} // closed once stopAt bytes were read
	block   chan struct{}
}

func newStream(n int64, seed byte) *stream {
	var s [32]byte
	s[0] = seed
	return &stream{n: n, rng: rand.NewChaCha8(s), sum: sha256.New()}
}

func (s *stream) Read(p []byte) (int, error) {
	if s.sent >= s.n {
		return 0, io.EOF
	}
	if s.stopAt > 0 && s.sent >= s.stopAt {
		close(s.reached)
		<-s.block
		return 0, io.ErrUnexpectedEOF
	}
	p = p[:min(int64(len(p)), s.n-s.sent)]
	_, _ = s.rng.Read(p)
	s.sum.Write(p)
	s.sent += int64(len(p))
	return len(p), nil
}

func (s *stream) cid() string {
	mh, _ := multihash.Encode(s.sum.Sum(nil), multihash.SHA2_256)
	return cid.NewCidV1(cid.Raw, mh).String()
}

// An operator's large upload through the real server process: 200 MB
// streams in and out with bounded memory; a server killed mid-upload
// leaves no trace of the partial blob; the blob survives restarts.
func TestServeLargeBlobBoundedMemoryAndKill(t *testing.T) {
	testenv.Slow(t, "moves 200 MB through a server process")
	plcSrv := plcserver.Start(t)
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--plc-url", plcSrv.URL, "--invite-required=false", "--blob-upload-limit", "300000000"}
	c := startChild(t, args...)
	base := "http://" + c.addr + "/xrpc/"
	var acct struct{ DID, AccessJwt string }
	body := `{"handle":"big.test","email":"big@example.com","password":"hunter22hunter"}`
	resp, err := http.Post(base+"com.atproto.server.createAccount", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&acct)
	resp.Body.Close()
	if acct.DID == "" {
		t.Fatalf("createAccount: %d", resp.StatusCode)
	}
	uploadReq := func(s *stream) *http.Request {
		req, _ := http.NewRequest("POST", base+"com.atproto.repo.uploadBlob", s)
		req.ContentLength = s.n
		req.Header.Set("Content-Type", "video/mp4")
		req.Header.Set("Authorization", "Bearer "+acct.AccessJwt)
		return req
	}
	baseline := c.vm(t, "VmRSS")

	const size = 200 << 20
	big := newStream(size, 1)
	resp, err = http.DefaultClient.Do(uploadReq(big))
	if err != nil {
		t.Fatal(err)
	}
	var up struct {
		Blob struct {
			Ref  map[string]string
			Size int64
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if resp.StatusCode != 200 || up.Blob.Ref["$link"] != big.cid() || up.Blob.Size != size {
		t.Fatalf("upload: %d %+v, want cid %s", resp.StatusCode, up, big.cid())
	}
	// Stream it back and hash it.
	resp, err = http.Get(base + "com.atproto.sync.getBlob?" + url.Values{"did": {acct.DID}, "cid": {big.cid()}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	mh, _ := multihash.Encode(h.Sum(nil), multihash.SHA2_256)
	if err != nil || n != size || cid.NewCidV1(cid.Raw, mh).String() != big.cid() {
		t.Fatalf("getBlob: %d bytes, %v", n, err)
	}
	peak := c.vm(t, "VmHWM")
	t.Logf("200 MiB up and down: server RSS %d MiB before, peak %d MiB", baseline>>10, peak>>10)
	if growth := peak - baseline; growth > 64<<10 {
		t.Fatalf("server peak RSS grew by %d MiB moving a 200 MiB blob", growth>>10)
	}

	// Kill the server while a second upload is half-way in.
	half := newStream(64<<20, 2)
	half.stopAt, half.reached, half.block = 16<<20, make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(uploadReq(half)); err == nil {
			resp.Body.Close()
			t.Errorf("an upload cut by a crash was answered %d", resp.StatusCode)
		}
	}()
	<-half.reached
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	close(half.block)
	<-done

	// Restart, then stop cleanly: only the complete blob exists anywhere.
	c = startChild(t, args...)
	resp, err = http.Get("http://" + c.addr + "/xrpc/com.atproto.sync.getBlob?" + url.Values{"did": {acct.DID}, "cid": {big.cid()}}.Encode())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("blob after restart: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	st, err := disk.Open(filepath.Join(dir, "blobs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cids, err := st.List(t.Context(), syntax.DID(acct.DID), cid.Undef, 10)
	if err != nil || len(cids) != 1 || cids[0].String() != big.cid() {
		t.Fatalf("stored blobs after the crash: %v %v", cids, err)
	}
	tmp, _ := os.ReadDir(filepath.Join(dir, "blobs", "tmp"))
	if len(tmp) != 0 {
		t.Fatalf("temp files left after restart: %v", tmp)
	}
}

// The whole blob life through `pdslog serve`: upload, a post referencing
// it, the bytes served back identical, the post deleted, and the collector
// removing the blob once its grace has passed.
func TestServeBlobLifecycle(t *testing.T) {
	plcSrv := plcserver.Start(t)
	dir := t.TempDir()
	addr, _, stop := startServe(t, "--data-dir", dir, "--plc-url", plcSrv.URL, "--invite-required=false",
		"--blob-grace", "300ms", "--blob-collect-interval", "50ms")
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	base := "http://" + addr + "/xrpc/"
	call := func(method, nsid, token, ct string, body io.Reader, out any) int {
		return xrpcCall(t, method, base+nsid, token, ct, body, out).StatusCode
	}
	var desc struct{ BlobUploadLimit int64 }
	if st := call("GET", "com.atproto.server.describeServer", "", "", nil, &desc); st != 200 || desc.BlobUploadLimit != 104857600 {
		t.Fatalf("describeServer: %d, blobUploadLimit %d", st, desc.BlobUploadLimit)
	}
	var acct struct{ DID, AccessJwt string }
	if st := call("POST", "com.atproto.server.createAccount", "", "application/json",
		strings.NewReader(`{"handle":"snaps.test","email":"p@example.com","password":"hunter22hunter"}`), &acct); st != 200 {
		t.Fatalf("createAccount: %d", st)
	}
	img := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 3000)...)
	var up struct {
		Blob map[string]any `json:"blob"`
	}
	if st := call("POST", "com.atproto.repo.uploadBlob", acct.AccessJwt, "image/png", strings.NewReader(string(img)), &up); st != 200 {
		t.Fatalf("upload: %d", st)
	}
	c := up.Blob["ref"].(map[string]any)["$link"].(string)
	rec, _ := json.Marshal(map[string]any{"repo": acct.DID, "collection": "app.bsky.feed.post", "record": map[string]any{
		"text": "pic", "createdAt": "2026-11-26T12:00:00.000Z",
		"embed": map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "", "image": up.Blob}}}}})
	var created struct{ URI string }
	if st := call("POST", "com.atproto.repo.createRecord", acct.AccessJwt, "application/json", strings.NewReader(string(rec)), &created); st != 200 {
		t.Fatalf("post: %d", st)
	}
	getBlob := func() (int, []byte) {
		resp, err := http.Get(base + "com.atproto.sync.getBlob?" + url.Values{"did": {acct.DID}, "cid": {c}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// Referenced, it outlives many collector rounds past its grace.
	time.Sleep(500 * time.Millisecond) // > grace: the collector has run several times
	if st, b := getBlob(); st != 200 || string(b) != string(img) {
		t.Fatalf("getBlob of a referenced blob: %d, %d bytes", st, len(b))
	}
	u, _ := syntax.ParseATURI(created.URI)
	del, _ := json.Marshal(map[string]any{"repo": acct.DID, "collection": "app.bsky.feed.post", "rkey": u.RecordKey()})
	if st := call("POST", "com.atproto.repo.deleteRecord", acct.AccessJwt, "application/json", strings.NewReader(string(del)), nil); st != 200 {
		t.Fatalf("delete: %d", st)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := getBlob()
		if st == 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a dereferenced blob was not collected within 30 s of a 300 ms grace")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	stopped = true
	st, err := disk.Open(filepath.Join(dir, "blobs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cids, err := st.List(t.Context(), syntax.DID(acct.DID), cid.Undef, 10); err != nil || len(cids) != 0 {
		t.Fatalf("bytes left after collection: %v %v", cids, err)
	}
}

// xrpcCall makes one HTTP call to url (with a bearer token and a content
// type when given), decodes its JSON body into out (when non-nil) whatever
// the status, and returns the response, its body closed.
func xrpcCall(t testing.TB, method, url, token, ct string, body io.Reader, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp
}
