package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/events"
	"github.com/coder/websocket"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/backup"
	"github.com/pdslog/pdslog/eventlog/backup/objstore/objstoretest"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/projections/testenv"
)

// relayFrame is what a relay-style consumer keeps of one firehose frame.
type relayFrame struct {
	seq               int64
	kind              string // commit, sync, identity, account
	repo, rev, since  string
	commit            string
	tooBig, hasPrevDt bool
}

// relay follows the firehose from a cursor, as a relay does, recording
// every frame until stopped.
type relay struct {
	mu     sync.Mutex
	frames []relayFrame
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func follow(t *testing.T, addr string, cursor int64) *relay {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &relay{cancel: cancel, done: make(chan struct{})}
	ws, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/xrpc/com.atproto.sync.subscribeRepos?cursor=%d", addr, cursor), nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ws.SetReadLimit(16 << 20)
	go func() {
		defer close(r.done)
		defer ws.CloseNow()
		for {
			_, raw, err := ws.Read(ctx)
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				return
			}
			var evt events.XRPCStreamEvent
			if err := evt.Deserialize(bytes.NewReader(raw)); err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				return
			}
			var f relayFrame
			switch {
			case evt.RepoCommit != nil:
				c := evt.RepoCommit
				f = relayFrame{seq: c.Seq, kind: "commit", repo: c.Repo, rev: c.Rev, commit: c.Commit.String(), hasPrevDt: c.PrevData != nil}
				if c.Since != nil {
					f.since = *c.Since
				}
			case evt.RepoSync != nil:
				f = relayFrame{seq: evt.RepoSync.Seq, kind: "sync", repo: evt.RepoSync.Did, rev: evt.RepoSync.Rev}
			case evt.RepoIdentity != nil:
				f = relayFrame{seq: evt.RepoIdentity.Seq, kind: "identity", repo: evt.RepoIdentity.Did}
			case evt.RepoAccount != nil:
				f = relayFrame{seq: evt.RepoAccount.Seq, kind: "account", repo: evt.RepoAccount.Did}
			default:
				continue
			}
			r.mu.Lock()
			r.frames = append(r.frames, f)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *relay) stop() []relayFrame {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.frames)
}

func (r *relay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

// timedAck is an acknowledged write and when its answer arrived.
type timedAck struct {
	*crashAck
	at time.Time
}

// The disaster, through the real serve process: serve ships to a real
// S3-compatible server on loopback under writes from several clients on
// several accounts (with blobs on disk). Faults first: the S3 server goes
// down for a while (shipping catches up, nothing lost), then serve is
// SIGKILLed while a segment upload hangs (the restart resumes with no
// duplicate and no hole). Then, at a random moment, the whole data dir is
// deleted and serve SIGKILLed. `pdslog restore` on an empty dir, then
// `replay --verify`, then serve again: every write acknowledged more than
// the RPO before the loss is there with its CID, blobs too; the firehose
// goes on above every seq served before, and a relay-style consumer
// reconnecting from its old cursor sees nothing it cannot explain: seqs
// only grow, and every repo whose chain does not continue from what the
// relay saw is announced by a #sync first.
func TestBackupDisaster(t *testing.T) {
	testenv.Slow(t, "kills serve child processes; the real PLC directory (Node.js)")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	plcSrv := plcserver.Start(t)
	s3 := objstoretest.StartFakeS3(t)
	const rpo = time.Second
	dir := filepath.Join(t.TempDir(), "data")
	backupArgs := []string{"--backup-url", "s3://" + objstoretest.FakeBucket + "/pds", "--backup-s3-endpoint", s3.URL,
		"--backup-s3-access-key-id", objstoretest.FakeKeyID, "--backup-s3-secret-access-key", objstoretest.FakeSecret,
		"--backup-s3-force-path-style", "--backup-passphrase", "disaster recovery passphrase", "--backup-scrypt-work-factor", "10",
		"--backup-rpo", rpo.String(), "--backup-seq-reserve", "2000"}
	serveArgs := func(d string) []string {
		return append([]string{"--data-dir", d, "--plc-url", plcSrv.URL, "--invite-required=false", "--rate-limits=false"}, backupArgs...)
	}
	cc := &crashClient{t: t, http: &http.Client{Timeout: 10 * time.Second}}
	c := startChild(t, serveArgs(dir)...)
	base := "http://" + c.addr

	type account struct{ DID, AccessJwt string }
	accts := make([]account, 4)
	blobs := map[string]string{} // did -> blob cid
	for i := range accts {
		st, err := cc.call(base, "POST", "com.atproto.server.createAccount", "", nil, map[string]any{
			"handle": fmt.Sprintf("dis%d.test", i), "email": fmt.Sprintf("d%d@example.com", i), "password": "hunter22hunter"}, &accts[i])
		if err != nil || st != 200 {
			t.Fatalf("createAccount %d: %d %v", i, st, err)
		}
		var up struct {
			Blob struct {
				Ref map[string]string `json:"ref"`
			} `json:"blob"`
		}
		resp := xrpcCall(t, "POST", base+"/xrpc/com.atproto.repo.uploadBlob", accts[i].AccessJwt, "image/png",
			strings.NewReader(fmt.Sprintf("\x89PNG\r\n\x1a\nblob of account %d", i)), &up)
		if resp.StatusCode != 200 || up.Blob.Ref["$link"] == "" {
			t.Fatalf("uploadBlob: %d", resp.StatusCode)
		}
		blobs[accts[i].DID] = up.Blob.Ref["$link"]
	}
	rel := follow(t, c.addr, 0)

	var (
		mu    sync.Mutex
		acked []timedAck
	)
	// load runs two writers per account against base until stop closes.
	load := func(base string, stop chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		for i, a := range accts {
			for k := range 2 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(seed, uint64(i*10+k)+uint64(time.Now().UnixNano())))
					for n := 0; ; n++ {
						select {
						case <-stop:
							return
						default:
						}
						ack, _, _ := cc.write(base, a.DID, a.AccessJwt, r, n)
						if ack == nil {
							return // the server is gone
						}
						mu.Lock()
						acked = append(acked, timedAck{ack, time.Now()})
						mu.Unlock()
					}
				})
			}
		}
		return &wg
	}

	// Fault 1: the S3 server down for a while under load.
	stop := make(chan struct{})
	wg := load(base, stop)
	time.Sleep(500 * time.Millisecond)
	s3.SetDown(true)
	time.Sleep(2 * time.Second)
	s3.SetDown(false)
	time.Sleep(2 * time.Second)

	// Fault 2: SIGKILL while a segment upload hangs.
	var once sync.Once
	s3.Hold(func(r *http.Request) bool {
		held := false
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/segments/") {
			once.Do(func() { held = true })
		}
		return held
	})
	select {
	case <-s3.Held():
	case <-time.After(20 * time.Second):
		t.Fatal("no segment upload was held")
	}
	time.Sleep(300 * time.Millisecond)
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
	close(stop)
	wg.Wait()
	s3.Release()
	c = startChild(t, serveArgs(dir)...)
	base = "http://" + c.addr
	// The relay reconnects from where it was.
	frames := rel.stop()
	rel = follow(t, c.addr, frames[len(frames)-1].seq)
	// The restarted shipper resumes the same generation: every segment in
	// the backup is in its chain (the one cut off by the kill was shipped
	// again, anything beyond the hole it left removed), dense from seq 1.
	tg, err := backup.OpenTarget("s3://"+objstoretest.FakeBucket+"/pds", backup.S3Config{Endpoint: s3.URL, ForcePathStyle: true,
		AccessKeyID: objstoretest.FakeKeyID, SecretAccessKey: objstoretest.FakeSecret})
	if err != nil {
		t.Fatal(err)
	}
	var killed int64
	for _, f := range frames {
		killed = max(killed, f.seq)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		st, err := backup.ReadStatus(t.Context(), tg, "")
		if err == nil && st.Head >= eventlogSeq(killed) && st.Stale == 0 && len(st.Generations) == 1 {
			t.Logf("after the crash mid-upload: backup resumed, dense through %d in %d segments, nothing stale", st.Head, st.Segments)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup after the crash mid-upload: %+v %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Load again, then the disaster at a random moment.
	stop = make(chan struct{})
	wg = load(base, stop)
	time.Sleep(time.Duration(1500+rng.IntN(2000)) * time.Millisecond)
	lost := time.Now()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
	close(stop)
	wg.Wait()
	frames = append(frames, rel.stop()...)
	var served int64
	for _, f := range frames {
		served = max(served, f.seq)
	}
	mu.Lock()
	all := slices.Clone(acked)
	mu.Unlock()
	t.Logf("%d writes acknowledged; relay saw %d frames through seq %d", len(all), len(frames), served)

	// The backup after the faults: still one generation.
	st, err := backup.ReadStatus(t.Context(), tg, "")
	if err != nil || len(st.Generations) != 1 {
		t.Fatalf("backup after the loss: %+v %v", st, err)
	}

	// Restore on an empty dir, verify, serve.
	restored := filepath.Join(t.TempDir(), "restored")
	code, out, errOut := runCmd(t, t.Context(), append([]string{"restore", "--from", "s3://" + objstoretest.FakeBucket + "/pds", "--data-dir", restored,
		"--log-format", "text"}, backupArgs[2:]...)...)
	if code != exitOK {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("%s", out)
	if code, out, errOut := runCmd(t, t.Context(), "replay", "--data-dir", restored, "--verify", "--log-format", "text"); code != exitOK {
		t.Fatalf("replay --verify of the restored dir: exit %d\n%s\n%s", code, out, errOut)
	}
	// Its metrics are on the operator listener (issue 14: not public).
	var childLog eventlogtest.SyncBuffer
	c = startChildEnv(t, []string{"PDSLOG_METRICS_ADDR=127.0.0.1:0"}, &childLog, append(serveArgs(restored), "--log-format", "json")...)
	base = "http://" + c.addr

	// Every write acknowledged more than the RPO before the loss is there.
	late, kept := 0, 0
	for _, a := range all {
		for uri, want := range a.records {
			parts := strings.Split(strings.TrimPrefix(uri, "at://"), "/")
			var got struct{ CID string }
			st, err := cc.call(base, "GET", "com.atproto.repo.getRecord", "", url.Values{"repo": {parts[0]}, "collection": {parts[1]}, "rkey": {parts[2]}}, nil, &got)
			present := err == nil && st == 200 && got.CID == want
			if a.at.Before(lost.Add(-rpo)) {
				if !present {
					t.Fatalf("write acknowledged %s before the loss is not restored: %s (cid %s): %d %q %v", lost.Sub(a.at), uri, want, st, got.CID, err)
				}
			} else {
				late++
				if present {
					kept++
				}
			}
		}
	}
	t.Logf("all writes acknowledged more than %s before the loss restored; of %d later ones, %d made it", rpo, late, kept)
	for did, c := range blobs {
		resp, err := http.Get(base + "/xrpc/com.atproto.sync.getBlob?did=" + did + "&cid=" + c)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte("blob of account")) {
			t.Fatalf("blob %s of %s after restore: %d", c, did, resp.StatusCode)
		}
	}

	// The restored server ships again (a new generation), and says so.
	mb := scrapeMetrics(t, &childLog)
	for _, m := range []string{"pdslog_backup_lag_events", "pdslog_backup_lag_seconds", "pdslog_backup_ship_lag_seconds_bucket"} {
		if !strings.Contains(mb, m) {
			t.Fatalf("/metrics has no %s", m)
		}
	}

	// The relay reconnects from its old cursor; then everyone writes again.
	rel = follow(t, c.addr, served)
	for _, a := range accts {
		if ack, st, err := cc.write(base, a.DID, a.AccessJwt, rng, 1_000_000); ack == nil {
			t.Fatalf("write after restore: %d %v", st, err)
		}
	}
	// Wait for the new commits: those after the #syncs the restore appended.
	newCommits := func() int {
		rel.mu.Lock()
		defer rel.mu.Unlock()
		var lastSync int64
		n := 0
		for _, f := range rel.frames {
			switch {
			case f.kind == "sync":
				lastSync = f.seq
			case f.kind == "commit" && lastSync > 0 && f.seq > lastSync:
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for newCommits() < len(accts) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := newCommits(); n < len(accts) {
		t.Fatalf("relay saw %d commits after the restore's #syncs, want %d", n, len(accts))
	}
	after := rel.stop()
	lastRev := map[string]string{}
	for _, f := range frames {
		if f.kind == "commit" || f.kind == "sync" {
			lastRev[f.repo] = f.rev
		}
	}
	synced := map[string]bool{}
	commits := 0
	prev := served
	for _, f := range after {
		if f.seq <= prev {
			t.Fatalf("relay from cursor %d got seq %d after %d", served, f.seq, prev)
		}
		prev = f.seq
		switch f.kind {
		case "sync":
			synced[f.repo] = true
			lastRev[f.repo] = f.rev
		case "commit":
			commits++
			if f.since != lastRev[f.repo] && !synced[f.repo] {
				t.Fatalf("seq %d: %s commit since %q, the relay last saw rev %q and no #sync explained the difference", f.seq, f.repo, f.since, lastRev[f.repo])
			}
			lastRev[f.repo] = f.rev
		}
	}
	if len(synced) != len(accts) {
		t.Fatalf("the restore announced %d of %d repos by #sync", len(synced), len(accts))
	}
	if commits < len(accts) {
		t.Fatalf("relay saw %d new commits after the restore, want %d (frames %+v)", commits, len(accts), after)
	}
	t.Logf("relay from cursor %d: %d frames, first seq %d, %d repos announced by #sync, %d new commits", served, len(after), after[0].seq, len(synced), commits)
}

func eventlogSeq(n int64) eventlog.Seq { return eventlog.Seq(max(n, 0)) }
