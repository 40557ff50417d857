package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	atrepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/events"
	"github.com/coder/websocket"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/mst/car"
	"github.com/pdslog/pdslog/projections/testenv"
)

// commitData finds the commit block c in a frame's CAR slice and returns
// its data (MST root) CID, decoded by indigo.
func commitData(t *testing.T, blocks []byte, c cid.Cid) cid.Cid {
	t.Helper()
	r, err := car.NewReader(bytes.NewReader(blocks), nil)
	if err != nil {
		t.Fatalf("frame blocks: %v", err)
	}
	for k, b := range r.All() {
		if k.Equals(c) {
			var cm atrepo.Commit
			if err := cm.UnmarshalCBOR(bytes.NewReader(b)); err != nil {
				t.Fatalf("commit block %s: %v", c, err)
			}
			return cm.Data
		}
	}
	t.Fatalf("commit block %s not in the frame's blocks (%v)", c, r.Err())
	return cid.Undef
}

// crashAck is one write the server answered 200.
type crashAck struct {
	did, commit, rev string
	records          map[string]string // at-uri -> record CID
}

// crashClient talks XRPC to whichever serve child is current.
type crashClient struct {
	t    *testing.T
	http *http.Client
}

func (cc *crashClient) call(base, method, nsid, token string, query url.Values, body any, out any) (int, error) {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	u := base + "/xrpc/" + nsid
	if query != nil {
		u += "?" + query.Encode()
	}
	var req *http.Request
	if rd != nil {
		req, _ = http.NewRequest(method, u, rd)
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, _ = http.NewRequest(method, u, nil)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cc.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

type writeResp struct {
	URI    string `json:"uri"`
	CID    string `json:"cid"`
	Commit struct {
		CID string `json:"cid"`
		Rev string `json:"rev"`
	} `json:"commit"`
	Results []struct {
		URI string `json:"uri"`
		CID string `json:"cid"`
	} `json:"results"`
}

// write makes one createRecord or applyWrites (two creates) and returns the
// acknowledgement, or nil when the server did not answer 200.
func (cc *crashClient) write(base, did, token string, rng *rand.Rand, n int) (*crashAck, int, error) {
	rec := func(i int) map[string]any {
		return map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprintf("crash %d.%d", n, i), "createdAt": "2026-11-26T12:00:00.000Z"}
	}
	var wr writeResp
	var st int
	var err error
	if rng.IntN(3) == 0 {
		st, err = cc.call(base, "POST", "com.atproto.repo.applyWrites", token, nil, map[string]any{"repo": did, "writes": []any{
			map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": rec(0)},
			map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": rec(1)},
		}}, &wr)
	} else {
		st, err = cc.call(base, "POST", "com.atproto.repo.createRecord", token, nil,
			map[string]any{"repo": did, "collection": "app.bsky.feed.post", "record": rec(0)}, &wr)
	}
	if err != nil || st != 200 {
		return nil, st, err
	}
	a := &crashAck{did: did, commit: wr.Commit.CID, rev: wr.Commit.Rev, records: map[string]string{}}
	if wr.URI != "" {
		a.records[wr.URI] = wr.CID
	}
	for _, r := range wr.Results {
		a.records[r.URI] = r.CID
	}
	if a.commit == "" || a.rev == "" || len(a.records) == 0 {
		return nil, st, fmt.Errorf("write answered 200 without commit or records: %+v", wr)
	}
	return a, st, nil
}

// The real `pdslog serve` process under writes from several clients,
// SIGKILLed at a random moment and restarted, many times: nothing it
// acknowledged is lost (every record readable with its CID, every commit on
// the firehose from cursor 0, which sends exactly the log's public events:
// dense log seqs, no gap but the private ones, no duplicate), each repo's next
// write chains from where it stood, and the log replays and verifies clean.
func TestCrashServeUnderLoad(t *testing.T) {
	testenv.Slow(t, "kills serve child processes")
	cycles := 20
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	plcSrv := plcserver.Start(t)
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--plc-url", plcSrv.URL, "--invite-required=false"}
	cc := &crashClient{t: t, http: &http.Client{Timeout: 10 * time.Second}}

	c := startChild(t, args...)
	base := "http://" + c.addr
	type account struct{ DID, AccessJwt string }
	accts := make([]account, 4)
	for i := range accts {
		st, err := cc.call(base, "POST", "com.atproto.server.createAccount", "", nil, map[string]any{
			"handle": fmt.Sprintf("crash%d.test", i), "email": fmt.Sprintf("c%d@example.com", i), "password": "hunter22hunter"}, &accts[i])
		if err != nil || st != 200 || accts[i].DID == "" {
			t.Fatalf("createAccount %d: %d %v", i, st, err)
		}
	}

	var (
		mu     sync.Mutex
		acked  []*crashAck
		lastBy = map[string]*crashAck{} // did -> last acknowledged write
		// commit CID -> the rev its repo stood at just before it (the
		// first write after a restart, checked against the firehose).
		wantSince = map[string]string{}
	)
	// The first write to each repo answers the genesis commit's rev.
	for _, a := range accts {
		var lc struct{ CID, Rev string }
		if st, err := cc.call(base, "GET", "com.atproto.sync.getLatestCommit", "", url.Values{"did": {a.DID}}, nil, &lc); err != nil || st != 200 {
			t.Fatalf("getLatestCommit: %d %v", st, err)
		}
		lastBy[a.DID] = &crashAck{did: a.DID, commit: lc.CID, rev: lc.Rev}
	}

	for cycle := range cycles {
		// Load: two clients per account until the kill.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var cycleAcks []*crashAck
		for i, a := range accts {
			for k := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(seed, uint64(cycle*100+i*10+k)))
					for n := 0; ; n++ {
						select {
						case <-stop:
							return
						default:
						}
						ack, st, err := cc.write(base, a.DID, a.AccessJwt, r, n)
						if ack == nil {
							if err == nil && st != 200 {
								t.Errorf("write answered %d while the server was up", st)
							}
							return // the server is gone (or failing): stop this client
						}
						mu.Lock()
						cycleAcks = append(cycleAcks, ack)
						mu.Unlock()
					}
				}()
			}
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = c.cmd.Wait()
		close(stop)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		// Acks are per-repo ordered by rev (two clients race on one repo).
		slices.SortFunc(cycleAcks, func(x, y *crashAck) int { return strings.Compare(x.rev, y.rev) })
		for _, a := range cycleAcks {
			if prev := lastBy[a.did]; a.rev > prev.rev {
				lastBy[a.did] = a
			}
		}
		acked = append(acked, cycleAcks...)

		c = startChild(t, args...)
		base = "http://" + c.addr
		// Every write acknowledged in this cycle is there, same CIDs.
		for _, a := range cycleAcks {
			for uri, want := range a.records {
				parts := strings.Split(strings.TrimPrefix(uri, "at://"), "/")
				var got struct{ CID string }
				st, err := cc.call(base, "GET", "com.atproto.repo.getRecord", "", url.Values{"repo": {parts[0]}, "collection": {parts[1]}, "rkey": {parts[2]}}, nil, &got)
				if err != nil || st != 200 || got.CID != want {
					t.Fatalf("cycle %d: acknowledged %s (cid %s) after restart: %d %q %v", cycle, uri, want, st, got.CID, err)
				}
			}
		}
		// Each repo stands at its last acknowledged commit or at a later
		// one that was written but not answered before the kill; the next
		// write succeeds and chains from where it stands.
		for _, a := range accts {
			var lc struct{ CID, Rev string }
			if st, err := cc.call(base, "GET", "com.atproto.sync.getLatestCommit", "", url.Values{"did": {a.DID}}, nil, &lc); err != nil || st != 200 {
				t.Fatalf("cycle %d: getLatestCommit: %d %v", cycle, st, err)
			}
			last := lastBy[a.DID]
			if lc.Rev < last.rev || (lc.Rev == last.rev && lc.CID != last.commit) {
				t.Fatalf("cycle %d: %s stands at %s (%s), behind its last acknowledged commit %s (%s)", cycle, a.DID, lc.CID, lc.Rev, last.commit, last.rev)
			}
			ack, st, err := cc.write(base, a.DID, a.AccessJwt, rng, -cycle)
			if ack == nil {
				t.Fatalf("cycle %d: first write after restart: %d %v", cycle, st, err)
			}
			if ack.rev <= lc.Rev {
				t.Fatalf("cycle %d: new rev %s not after %s", cycle, ack.rev, lc.Rev)
			}
			wantSince[ack.commit] = lc.Rev
			lastBy[a.DID] = ack
			acked = append(acked, ack)
		}
		t.Logf("cycle %d: %d writes acknowledged before the kill", cycle, len(cycleAcks))
	}

	// The firehose from cursor 0: strictly increasing seqs, every
	// acknowledged commit, and each repo's commits chained by since.
	want := map[string]bool{}
	for _, a := range acked {
		want[a.commit] = true
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+c.addr+"/xrpc/com.atproto.sync.subscribeRepos?cursor=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(16 << 20)
	var lastSeq int64 = -1
	revOf := map[string]string{}   // did -> rev of its latest commit on the stream
	dataOf := map[string]cid.Cid{} // did -> data CID of its latest commit on the stream
	frames := 0
	var seqs []eventlog.Seq // every seq the firehose sent, in order
	for len(want) > 0 {
		_, raw, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("firehose after %d frames (seq %d), %d acknowledged commits not seen: %v", frames, lastSeq, len(want), err)
		}
		frames++
		var evt events.XRPCStreamEvent
		r := bytes.NewReader(raw)
		if err := evt.Deserialize(r); err != nil || r.Len() != 0 {
			t.Fatalf("frame %d: %v (%d trailing bytes)", frames, err, r.Len())
		}
		if evt.Error != nil {
			t.Fatalf("firehose error frame: %+v", evt.Error)
		}
		var seq int64
		switch {
		case evt.RepoCommit != nil:
			cm := evt.RepoCommit
			seq = cm.Seq
			delete(want, cm.Commit.String())
			since := ""
			if cm.Since != nil {
				since = *cm.Since
			}
			data := commitData(t, cm.Blocks, cid.Cid(cm.Commit))
			if prev, ok := revOf[cm.Repo]; ok {
				if since != prev || cm.PrevData == nil || !cid.Cid(*cm.PrevData).Equals(dataOf[cm.Repo]) {
					t.Fatalf("seq %d: %s commit since %q prevData %v; previous commit's rev %q data %s", seq, cm.Repo, since, cm.PrevData, prev, dataOf[cm.Repo])
				}
			}
			dataOf[cm.Repo] = data
			if ps, ok := wantSince[cm.Commit.String()]; ok && since != ps {
				t.Fatalf("seq %d: first write after a restart has since %q, repo stood at %q", seq, since, ps)
			}
			revOf[cm.Repo] = cm.Rev
		case evt.RepoSync != nil:
			seq = evt.RepoSync.Seq
			revOf[evt.RepoSync.Did] = evt.RepoSync.Rev
		case evt.RepoIdentity != nil:
			seq = evt.RepoIdentity.Seq
		case evt.RepoAccount != nil:
			seq = evt.RepoAccount.Seq
		default:
			t.Fatalf("frame %d of an unexpected type", frames)
		}
		if seq <= lastSeq {
			t.Fatalf("firehose seq %d after %d", seq, lastSeq)
		}
		lastSeq = seq
		seqs = append(seqs, eventlog.Seq(seq))
	}
	ws.Close(websocket.StatusNormalClosure, "")
	t.Logf("%d cycles, %d acknowledged writes, all %d commits on the firehose (%d frames through seq %d)", cycles, len(acked), len(acked), frames, lastSeq)

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	// Contiguity: the log's seqs are dense from 1, and the firehose sent
	// exactly its public events, each once, in order — the only seqs it
	// skips are private events and tombstones, which never leave the server.
	d, err := pds.Open(dir, &pds.Options{Command: "test", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	it, err := d.Log.Iter(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var public []eventlog.Seq
	var next eventlog.Seq = 1
	for it.Next() {
		ev := it.Event()
		if ev.Seq != next {
			t.Fatalf("log seq %d where %d was next: not dense", ev.Seq, next)
		}
		next++
		if ev.Kind.Public() && int64(ev.Seq) <= lastSeq {
			public = append(public, ev.Seq)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if !slices.Equal(public, seqs) {
		t.Fatalf("firehose sent %d seqs through %d, the log holds %d public events there; first difference at %d",
			len(seqs), lastSeq, len(public), firstDiff(public, seqs))
	}
	t.Logf("log dense through %d; firehose = the log's %d public events through seq %d, no gap, no duplicate", next-1, len(public), lastSeq)

	code, out, errOut := runCmd(t, t.Context(), "replay", "--data-dir", dir, "--verify", "--log-format", "text")
	if code != exitOK || !strings.Contains(out, "verify: ") {
		t.Fatalf("replay --verify exit %d\n%s\n%s", code, out, errOut)
	}
}

// firstDiff is the index where a and b first differ.
func firstDiff[T comparable](a, b []T) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
