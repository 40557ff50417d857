package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

type benchCommand struct {
	stdout, stderr io.Writer

	target        string
	accounts      int
	concurrency   int
	duration      time.Duration
	mix           string
	subscribers   int
	json          bool
	state         string
	adminPassword string
	pid           int
	blobPerMinute int
	records       int
}

const benchSummary = `Load a running 'pdslog serve' and measure it: create (or reuse, from the
--state file) accounts, then call createRecord / applyWrites / getRecord /
listRecords / uploadBlob from --concurrency clients for --duration while
--subscribers firehose subscribers follow com.atproto.sync.subscribeRepos.
Prints ops/s and latency p50/p90/p99/max per operation, errors by XRPC error
name, firehose lag and whether every subscriber got every event, and the
server's RSS when --pid names its process.

Mixes: write (createRecord, applyWrites), read (getRecord, listRecords),
mixed (all five), health (GET /xrpc/_health, a baseline), or one operation
by name (e.g. getRecord). Two mixes are a single pass instead of a timed
load (--duration does not apply): readall reads every account once
(getRepo streamed whole and discarded, describeRepo, listRecords over every
page) and reports calls, records, bytes, time and, with --pid, the server's
RSS before, at its peak during and after the pass; getrepo streams getRepo
of each account in turn and reports, with --pid, the server's peak RSS
growth over a baseline taken right before each stream.

--records N first makes every account hold at least N records (counted
with describeRepo / listRecords, the rest created with createRecord at
--concurrency, progress on stderr); a target with rate limits on caps
this at its per-account write budget, so seed a large repo against one
started with --rate-limits=false.

Accounts are created through createAccount; a target that requires invites
needs --admin-password to mint an invite code. The target's writes count
against its per-account write budget (5000 points an hour, a create costs
3) and uploads against its per-IP budget (30 a minute): --blob-per-minute
paces uploadBlob under it.`

// Limits that keep a run bounded.
const (
	benchMaxAccounts    = 10_000
	benchMaxConcurrency = 4096
	benchMaxSubscribers = 10_000
	benchMaxDuration    = time.Hour
	benchSeedRecords    = 5 // records each account has before a read mix starts
	benchKnownPerRepo   = 1024
	benchCatchUpTimeout = 30 * time.Second
)

var benchMixes = map[string][]benchWeight{
	"write":  {{opCreateRecord, 4}, {opApplyWrites, 1}},
	"read":   {{opGetRecord, 3}, {opListRecords, 1}},
	"mixed":  {{opCreateRecord, 3}, {opApplyWrites, 1}, {opGetRecord, 4}, {opListRecords, 2}, {opUploadBlob, 1}},
	"health": {{opHealth, 1}},
}

type benchWeight struct {
	op     string
	weight int
}

const (
	opCreateRecord = "createRecord"
	opApplyWrites  = "applyWrites"
	opGetRecord    = "getRecord"
	opListRecords  = "listRecords"
	opUploadBlob   = "uploadBlob"
	opHealth       = "health"
)

var benchOps = []string{opCreateRecord, opApplyWrites, opGetRecord, opListRecords, opUploadBlob, opHealth}

func (c *benchCommand) run(ctx context.Context, args []string) error {
	f := newFlags("bench", benchSummary, c.stderr)
	f.String(&c.target, "target", "", "URL of the PDS to load, e.g. http://127.0.0.1:2583 (required)")
	f.Int(&c.accounts, "accounts", 4, "accounts to write to")
	f.Int(&c.concurrency, "concurrency", 4, "concurrent clients; client i writes to account i mod --accounts")
	f.Duration(&c.duration, "duration", 10*time.Second, "how long to apply the load")
	f.String(&c.mix, "mix", "mixed", "operations: write, read, mixed, health, or one operation name; or a single pass: readall, getrepo")
	f.Int(&c.subscribers, "subscribers", 0, "firehose subscribers following during the load")
	f.Bool(&c.json, "json", false, "print one JSON document instead of the table")
	f.String(&c.state, "state", "pdslog-bench.json", "file that keeps the accounts created, reused on the next run against the same target")
	f.Secret(&c.adminPassword, "admin-password", "the target's admin password, to mint an invite code when it requires one", "PDS_ADMIN_PASSWORD")
	f.Int(&c.pid, "pid", 0, "process id of the target, to report its RSS (Linux /proc)")
	f.Int(&c.blobPerMinute, "blob-per-minute", 25, "most uploadBlob calls a minute (the target allows 30 per IP)")
	f.Int(&c.records, "records", 0, "before the load, make every account hold at least this many records")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	b, err := newBench(c)
	if err != nil {
		return err
	}
	rep, err := b.run(ctx)
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(c.stdout)
	return nil
}

func (c *benchCommand) validate() error {
	if c.target == "" {
		return usageError{"--target is required (the URL of a running pdslog serve)"}
	}
	u, err := url.Parse(c.target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return usageError{fmt.Sprintf("--target %q: want http(s)://host[:port]", c.target)}
	}
	c.target = u.Scheme + "://" + u.Host
	switch {
	case c.accounts < 1 || c.accounts > benchMaxAccounts:
		return usageError{fmt.Sprintf("--accounts must be 1..%d", benchMaxAccounts)}
	case c.concurrency < 1 || c.concurrency > benchMaxConcurrency:
		return usageError{fmt.Sprintf("--concurrency must be 1..%d", benchMaxConcurrency)}
	case c.subscribers < 0 || c.subscribers > benchMaxSubscribers:
		return usageError{fmt.Sprintf("--subscribers must be 0..%d", benchMaxSubscribers)}
	case c.duration <= 0 || c.duration > benchMaxDuration:
		return usageError{fmt.Sprintf("--duration must be in (0, %s]", benchMaxDuration)}
	case c.blobPerMinute < 0:
		return usageError{"--blob-per-minute must not be negative"}
	case c.records < 0 || c.records > benchMaxRecords:
		return usageError{fmt.Sprintf("--records must be 0..%d", benchMaxRecords)}
	}
	if _, ok := benchMixes[c.mix]; !ok && !slices.Contains(benchOps, c.mix) && !isPassMix(c.mix) {
		return usageError{fmt.Sprintf("--mix %q: want write, read, mixed, health, readall, getrepo or one of %s", c.mix, strings.Join(benchOps, ", "))}
	}
	return nil
}

// bench is one run.
type bench struct {
	c      *benchCommand
	http   *http.Client
	mix    []benchWeight
	weight int
	stats  map[string]*opStats
	accts  []*benchAccount
	blobs  *benchPacer
	domain string // handle domain new accounts sign up under

	ackedCommits atomic.Int64 // write calls that got a 200: one commit each
}

type benchAccount struct {
	DID        string `json:"did"`
	Handle     string `json:"handle"`
	Password   string `json:"password"`
	AccessJwt  string `json:"accessJwt"`
	RefreshJwt string `json:"refreshJwt"`

	mu    sync.Mutex
	rkeys []string // recent records, for reads
}

func (a *benchAccount) remember(rkey string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.rkeys) >= benchKnownPerRepo {
		a.rkeys = a.rkeys[1:]
	}
	a.rkeys = append(a.rkeys, rkey)
}

func (a *benchAccount) pick(r *rand.Rand) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.rkeys) == 0 {
		return ""
	}
	return a.rkeys[r.IntN(len(a.rkeys))]
}

func newBench(c *benchCommand) (*bench, error) {
	b := &bench{c: c, stats: map[string]*opStats{}}
	if m, ok := benchMixes[c.mix]; ok {
		b.mix = m
	} else if isPassMix(c.mix) {
		b.mix = []benchWeight{{opDescribeRepo, 1}, {opGetRepo, 1}, {opListRecords, 1}}
	} else {
		b.mix = []benchWeight{{c.mix, 1}}
	}
	for _, w := range b.mix {
		b.weight += w.weight
		b.stats[w.op] = newOpStats()
	}
	b.http = &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConns:        c.concurrency + 16,
			MaxIdleConnsPerHost: c.concurrency + 16,
			IdleConnTimeout:     time.Minute,
		},
	}
	b.blobs = newBenchPacer(c.blobPerMinute)
	return b, nil
}

// benchReport is the result of a run.
type benchReport struct {
	Target      string           `json:"target"`
	Mix         string           `json:"mix"`
	Accounts    int              `json:"accounts"`
	Concurrency int              `json:"concurrency"`
	DurationSec float64          `json:"duration_sec"`
	Ops         []benchOpReport  `json:"ops"`
	Total       benchOpReport    `json:"total"`
	Errors      map[string]int64 `json:"errors"`
	Firehose    *benchFirehose   `json:"firehose,omitempty"`
	Server      *benchServer     `json:"server,omitempty"`
	// Pass is the result of --mix readall or getrepo.
	Pass *benchPass `json:"pass,omitempty"`
	// BenchCPUCores is this process's own CPU time (clients and
	// subscribers) over the load's wall time: on a shared box the load
	// generator's share is not the server's.
	BenchCPUCores float64 `json:"bench_cpu_cores"`
	// BoxCPUCores is the whole machine's busy CPU time over the load's
	// wall time (Linux /proc/stat), of BoxCores: what neither the server nor
	// the bench used was taken by other processes.
	BoxCPUCores float64 `json:"box_cpu_cores,omitempty"`
	BoxCores    int     `json:"box_cores"`
}

type benchFirehose struct {
	Subscribers int `json:"subscribers"`
	// AckedCommits is the number of write calls that got a 200 during the
	// load; each subscriber must have seen a #commit for every one.
	AckedCommits int64 `json:"acked_commits"`
	// Events and CommitsOfBench are per-subscriber minimum and maximum.
	EventsMin                  int64    `json:"events_min"`
	EventsMax                  int64    `json:"events_max"`
	BenchCommitsMin            int64    `json:"bench_commits_min"`
	BenchCommitsMax            int64    `json:"bench_commits_max"`
	LastSeq                    int64    `json:"last_seq"`
	LagMaxMs                   float64  `json:"lag_max_ms"`        // greatest (receive − event time) of any frame
	FinalCatchUpMs             float64  `json:"final_catch_up_ms"` // from the end of the load until every subscriber had every acked commit
	OutOfOrder                 int64    `json:"out_of_order"`      // frames whose seq did not increase
	Dropped                    int      `json:"dropped"`           // subscribers whose stream ended early
	EverySubscriberGotEverySeq bool     `json:"every_subscriber_got_every_seq"`
	Problems                   []string `json:"problems,omitempty"`
}

type benchServer struct {
	PID        int     `json:"pid"`
	RSSStartMB float64 `json:"rss_start_mb"`
	RSSEndMB   float64 `json:"rss_end_mb"`
	RSSPeakMB  float64 `json:"rss_peak_mb"` // VmHWM: the process's peak since start
	// CPUCores is the server's user+system CPU time during the load over
	// its wall time: 2.0 is both cores of a 2-core box.
	CPUCores float64 `json:"cpu_cores"`
}

func (b *bench) run(ctx context.Context) (*benchReport, error) {
	if err := b.setupAccounts(ctx); err != nil {
		return nil, err
	}
	if b.c.records > 0 {
		if err := b.fillRecords(ctx); err != nil {
			return nil, err
		}
		b.ackedCommits.Store(0)
	}
	for op := range b.stats {
		b.stats[op] = newOpStats() // calls made while setting up are not the measured phase's
	}
	rep := &benchReport{Target: b.c.target, Mix: b.c.mix, Accounts: b.c.accounts, Concurrency: b.c.concurrency}
	if isPassMix(b.c.mix) {
		p, elapsed, err := b.runPass(ctx)
		if err != nil {
			return nil, err
		}
		rep.Pass, rep.DurationSec = p, elapsed.Seconds()
		rep.BoxCores = runtime.NumCPU()
		b.opsReport(rep, elapsed)
		return rep, nil
	}
	var rssStart float64
	var srvCPU0 time.Duration
	if b.c.pid > 0 {
		rss, _, err := readRSS(b.c.pid)
		if err != nil {
			return nil, fmt.Errorf("bench: --pid %d: %w", b.c.pid, err)
		}
		rssStart = rss
	}

	var subs *benchSubscribers
	if b.c.subscribers > 0 {
		var err error
		if subs, err = b.startSubscribers(ctx); err != nil {
			return nil, err
		}
		defer subs.close()
	}

	// Clients stop starting calls at the deadline but finish the one in
	// flight, so every write sent is either acknowledged or failed.
	if b.c.pid > 0 {
		srvCPU0, _ = procCPU(b.c.pid)
	}
	cpu0, box0 := selfCPU(), boxCPU()
	start := time.Now()
	deadline := start.Add(b.c.duration)
	stopProgress := b.progress()
	var wg sync.WaitGroup
	for i := range b.c.concurrency {
		wg.Go(func() { b.client(ctx, deadline, i) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	loadEnd := time.Now()
	rep.BenchCPUCores = (selfCPU() - cpu0).Seconds() / elapsed.Seconds()
	if box1 := boxCPU(); box0 > 0 && box1 > box0 {
		rep.BoxCPUCores = (box1 - box0).Seconds() / elapsed.Seconds()
	}
	rep.BoxCores = runtime.NumCPU()
	var srvCPU time.Duration
	if b.c.pid > 0 {
		c, err := procCPU(b.c.pid)
		if err == nil {
			srvCPU = c - srvCPU0
		}
	}
	stopProgress()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.DurationSec = elapsed.Seconds()

	if subs != nil {
		rep.Firehose = subs.finish(ctx, b.ackedCommits.Load(), loadEnd)
	}
	if b.c.pid > 0 {
		rss, hwm, err := readRSS(b.c.pid)
		if err == nil {
			rep.Server = &benchServer{PID: b.c.pid, RSSStartMB: rssStart, RSSEndMB: rss, RSSPeakMB: hwm,
				CPUCores: srvCPU.Seconds() / elapsed.Seconds()}
		}
	}

	b.opsReport(rep, elapsed)
	return rep, nil
}

// opsReport fills the per-operation rows, the total and the errors.
func (b *bench) opsReport(rep *benchReport, elapsed time.Duration) {
	rep.Errors = map[string]int64{}
	total := newOpStats()
	for _, op := range append(slices.Clone(benchOps), opDescribeRepo, opGetRepo) {
		s, ok := b.stats[op]
		if !ok {
			continue
		}
		r := s.report(op, elapsed)
		rep.Ops = append(rep.Ops, r)
		for k, v := range r.Errors {
			rep.Errors[k] += v
		}
		s.mu.Lock()
		for _, d := range s.samples {
			total.samples = append(total.samples, d)
		}
		total.count += s.count
		total.seen += s.seen
		total.max = max(total.max, s.max)
		for k, v := range s.errors {
			total.errors[k] += v
		}
		s.mu.Unlock()
	}
	rep.Total = total.report("total", elapsed)
}

// progress redraws a status line on a terminal until stopped.
func (b *bench) progress() (stop func()) {
	if !isTerminal(b.c.stderr) {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(b.c.stderr)
				return
			case <-t.C:
			}
			var n, errs int64
			for _, s := range b.stats {
				tot := s.total()
				s.mu.Lock()
				n += s.count
				s.mu.Unlock()
				errs += tot
			}
			errs -= n
			el := time.Since(start)
			fmt.Fprintf(b.c.stderr, "\rbench %s %5.1fs/%s  %d ops  %s ops/s  %d errors   ",
				b.c.mix, el.Seconds(), b.c.duration, n, human(float64(n)/el.Seconds()), errs)
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// client runs calls chosen from the mix until the deadline.
func (b *bench) client(ctx context.Context, deadline time.Time, i int) {
	r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
	acct := b.accts[i%len(b.accts)]
	for ctx.Err() == nil && time.Now().Before(deadline) {
		op := b.choose(r)
		if op == opUploadBlob && !b.blobs.take() {
			if len(b.mix) == 1 {
				time.Sleep(50 * time.Millisecond) // only uploads, and this minute's are spent
			}
			continue
		}
		start := time.Now()
		err := b.call(ctx, r, op, acct)
		d := time.Since(start)
		if ctx.Err() != nil && err != nil {
			return // interrupted, not the server's failure
		}
		if err != nil {
			b.stats[op].fail(benchErrorName(err))
			continue
		}
		b.stats[op].ok(d)
	}
}

func (b *bench) choose(r *rand.Rand) string {
	n := r.IntN(b.weight)
	for _, w := range b.mix {
		if n < w.weight {
			return w.op
		}
		n -= w.weight
	}
	return b.mix[0].op
}

func (b *bench) call(ctx context.Context, r *rand.Rand, op string, acct *benchAccount) error {
	switch op {
	case opCreateRecord:
		var out struct {
			URI string `json:"uri"`
		}
		if err := b.xrpc(ctx, "POST", "com.atproto.repo.createRecord", nil, acct.AccessJwt, map[string]any{
			"repo": acct.DID, "collection": "app.bsky.feed.post", "record": benchPost(r)}, &out); err != nil {
			return err
		}
		b.ackedCommits.Add(1)
		acct.remember(out.URI[strings.LastIndexByte(out.URI, '/')+1:])
	case opApplyWrites:
		var writes []any
		for range 3 {
			writes = append(writes, map[string]any{"$type": "com.atproto.repo.applyWrites#create",
				"collection": "app.bsky.feed.post", "value": benchPost(r)})
		}
		var out struct {
			Results []struct {
				URI string `json:"uri"`
			} `json:"results"`
		}
		if err := b.xrpc(ctx, "POST", "com.atproto.repo.applyWrites", nil, acct.AccessJwt, map[string]any{
			"repo": acct.DID, "writes": writes}, &out); err != nil {
			return err
		}
		b.ackedCommits.Add(1)
		for _, res := range out.Results {
			acct.remember(res.URI[strings.LastIndexByte(res.URI, '/')+1:])
		}
	case opGetRecord:
		other := b.accts[r.IntN(len(b.accts))]
		rkey := other.pick(r)
		if rkey == "" {
			other, rkey = acct, acct.pick(r)
		}
		return b.xrpc(ctx, "GET", "com.atproto.repo.getRecord", url.Values{"repo": {other.DID},
			"collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, "", nil, nil)
	case opListRecords:
		other := b.accts[r.IntN(len(b.accts))]
		return b.xrpc(ctx, "GET", "com.atproto.repo.listRecords", url.Values{"repo": {other.DID},
			"collection": {"app.bsky.feed.post"}, "limit": {"50"}}, "", nil, nil)
	case opUploadBlob:
		blob := make([]byte, 1024)
		for i := range blob {
			blob[i] = byte(r.Uint32())
		}
		return b.xrpc(ctx, "POST", "com.atproto.repo.uploadBlob", nil, acct.AccessJwt, blob, nil)
	case opHealth:
		return b.xrpc(ctx, "GET", "_health", nil, "", nil, nil)
	}
	return nil
}

func benchPost(r *rand.Rand) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": "pdslog bench post " + strconv.FormatUint(r.Uint64(), 36),
		"createdAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "langs": []any{"en"}}
}

// xrpcCallError is a call the target answered with an error (or not at all).
type xrpcCallError struct {
	status int
	name   string
	msg    string
}

func (e *xrpcCallError) Error() string {
	if e.status == 0 {
		return "bench: " + e.msg
	}
	return fmt.Sprintf("bench: HTTP %d %s: %s", e.status, e.name, e.msg)
}

func benchErrorName(err error) string {
	var xe *xrpcCallError
	if errors.As(err, &xe) {
		if xe.status == 0 {
			return "transport"
		}
		return xe.name
	}
	return "transport"
}

// xrpc calls method; body is JSON unless it is []byte; out, if set, gets the
// JSON answer.
func (b *bench) xrpc(ctx context.Context, httpMethod, method string, q url.Values, token string, body, out any) error {
	u := b.c.target + "/xrpc/" + method
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	ctype := ""
	switch v := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(v), "application/octet-stream"
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, httpMethod, u, rd)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	switch {
	case strings.HasPrefix(token, "Basic "):
		req.Header.Set("Authorization", token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return &xrpcCallError{msg: err.Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &xrpcCallError{msg: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		var xe struct{ Error, Message string }
		if json.Unmarshal(data, &xe) != nil || xe.Error == "" {
			xe.Error = "HTTP" + strconv.Itoa(resp.StatusCode)
		}
		return &xrpcCallError{status: resp.StatusCode, name: xe.Error, msg: xe.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("bench: %s: %w", method, err)
		}
	}
	return nil
}

// benchState is the --state file.
type benchState struct {
	Target   string          `json:"target"`
	Accounts []*benchAccount `json:"accounts"`
}

// setupAccounts reuses the state file's accounts for this target, creates
// the rest, and seeds each with a few records when the mix reads.
func (b *bench) setupAccounts(ctx context.Context) error {
	var st benchState
	if data, err := os.ReadFile(b.c.state); err == nil {
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("bench: state file %s: %w", b.c.state, err)
		}
		if st.Target != b.c.target {
			st = benchState{} // another target's accounts
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bench: state file: %w", err)
	}
	st.Target = b.c.target
	save := func() error {
		data, err := json.MarshalIndent(&st, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(b.c.state+".tmp", data, 0o600); err != nil {
			return fmt.Errorf("bench: state file: %w", err)
		}
		return os.Rename(b.c.state+".tmp", b.c.state)
	}
	// Refresh the sessions of reused accounts; drop those the target lost.
	var kept []*benchAccount
	for _, a := range st.Accounts {
		if len(kept) == b.c.accounts {
			kept = append(kept, a)
			continue
		}
		if err := b.login(ctx, a); err != nil {
			fmt.Fprintf(b.c.stderr, "bench: dropping account %s from the state file: %v\n", a.DID, err)
			continue
		}
		kept = append(kept, a)
	}
	st.Accounts = kept
	need := b.c.accounts - min(len(st.Accounts), b.c.accounts)
	if need > 0 {
		invite, err := b.invite(ctx, need)
		if err != nil {
			return err
		}
		var made atomic.Int64
		stop := b.reportProgress(func(el time.Duration) string {
			return fmt.Sprintf("bench: accounts: %d of %d created", made.Load(), need)
		})
		for range need {
			a, err := b.createAccount(ctx, invite)
			if err != nil {
				stop()
				_ = save()
				return err
			}
			st.Accounts = append(st.Accounts, a)
			made.Add(1)
		}
		stop()
	}
	if err := save(); err != nil {
		return err
	}
	b.accts = st.Accounts[:b.c.accounts]
	// Reads need records to read: remember the newest, write a few if none
	// (--records writes them instead, at --concurrency).
	seed := benchSeedRecords
	if b.c.records >= seed {
		seed = 0
	}
	if err := b.each(ctx, len(b.accts), func(ctx context.Context, i int) error {
		a := b.accts[i]
		r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
		var out struct {
			Records []struct {
				URI string `json:"uri"`
			} `json:"records"`
		}
		if err := b.xrpc(ctx, "GET", "com.atproto.repo.listRecords", url.Values{"repo": {a.DID},
			"collection": {"app.bsky.feed.post"}, "limit": {"100"}}, "", nil, &out); err != nil {
			return fmt.Errorf("bench: listRecords %s: %w", a.DID, err)
		}
		for _, rec := range out.Records {
			a.remember(rec.URI[strings.LastIndexByte(rec.URI, '/')+1:])
		}
		for range seed - min(len(out.Records), seed) {
			if err := b.call(ctx, r, opCreateRecord, a); err != nil {
				return fmt.Errorf("bench: seeding %s: %w", a.DID, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	b.ackedCommits.Store(0)
	return nil
}

func (b *bench) login(ctx context.Context, a *benchAccount) error {
	var out struct{ AccessJwt, RefreshJwt string }
	err := b.xrpc(ctx, "POST", "com.atproto.server.refreshSession", nil, a.RefreshJwt, nil, &out)
	if err != nil {
		err = b.xrpc(ctx, "POST", "com.atproto.server.createSession", nil, "", map[string]any{
			"identifier": a.DID, "password": a.Password}, &out)
	}
	if err != nil {
		return err
	}
	a.AccessJwt, a.RefreshJwt = out.AccessJwt, out.RefreshJwt
	return nil
}

// invite returns an invite code good for n accounts, or "" when the target
// does not require one.
func (b *bench) invite(ctx context.Context, n int) (string, error) {
	var desc struct {
		InviteCodeRequired   bool     `json:"inviteCodeRequired"`
		AvailableUserDomains []string `json:"availableUserDomains"`
	}
	if err := b.xrpc(ctx, "GET", "com.atproto.server.describeServer", nil, "", nil, &desc); err != nil {
		return "", fmt.Errorf("bench: describeServer: %w", err)
	}
	if len(desc.AvailableUserDomains) == 0 {
		return "", errors.New("bench: the target offers no handle domain to sign up under")
	}
	b.domain = desc.AvailableUserDomains[0]
	if !desc.InviteCodeRequired {
		return "", nil
	}
	if b.c.adminPassword == "" {
		return "", usageError{"the target requires invite codes: give its admin password (--admin-password or PDS_ADMIN_PASSWORD)"}
	}
	var out struct{ Code string }
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+b.c.adminPassword))
	if err := b.xrpc(ctx, "POST", "com.atproto.server.createInviteCode", nil, basic, map[string]any{"useCount": n}, &out); err != nil {
		return "", fmt.Errorf("bench: createInviteCode: %w", err)
	}
	return out.Code, nil
}

func (b *bench) createAccount(ctx context.Context, invite string) (*benchAccount, error) {
	var raw [6]byte
	if _, err := crand.Read(raw[:]); err != nil {
		return nil, err
	}
	var pw [12]byte
	if _, err := crand.Read(pw[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(raw[:])
	domain := b.domain
	if !strings.HasPrefix(domain, ".") {
		domain = "." + domain
	}
	a := &benchAccount{Handle: "bench-" + id + domain, Password: hex.EncodeToString(pw[:])}
	in := map[string]any{"handle": a.Handle, "email": "bench-" + id + "@example.com", "password": a.Password}
	if invite != "" {
		in["inviteCode"] = invite
	}
	var out struct{ DID, AccessJwt, RefreshJwt string }
	if err := b.xrpc(ctx, "POST", "com.atproto.server.createAccount", nil, "", in, &out); err != nil {
		return nil, fmt.Errorf("bench: createAccount: %w", err)
	}
	a.DID, a.AccessJwt, a.RefreshJwt = out.DID, out.AccessJwt, out.RefreshJwt
	return a, nil
}

// benchPacer hands out at most perMinute tokens a minute (0: none).
type benchPacer struct {
	mu        sync.Mutex
	perMinute int
	start     time.Time
	taken     int
}

func newBenchPacer(perMinute int) *benchPacer {
	return &benchPacer{perMinute: perMinute, start: time.Now()}
}

func (p *benchPacer) take() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.start) >= time.Minute {
		p.start, p.taken = time.Now(), 0
	}
	if p.taken >= p.perMinute {
		return false
	}
	p.taken++
	return true
}

// print writes the report as a table.
func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "target %s  mix %s  accounts %d  concurrency %d  duration %.1fs\n\n",
		r.Target, r.Mix, r.Accounts, r.Concurrency, r.DurationSec)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tops/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\t")
	for _, o := range append(slices.Clone(r.Ops), r.Total) {
		var errs int64
		for _, v := range o.Errors {
			errs += v
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", o.Op, o.Count, o.OpsPerSec, o.P50Ms, o.P90Ms, o.P99Ms, o.MaxMs, errs)
	}
	tw.Flush()
	if len(r.Errors) > 0 {
		fmt.Fprintln(w, "\nerrors:")
		for _, o := range r.Ops {
			for _, k := range sortedKeys(o.Errors) {
				fmt.Fprintf(w, "  %-14s %-24s %d\n", o.Op, k, o.Errors[k])
			}
		}
	}
	if f := r.Firehose; f != nil {
		yes := "no"
		if f.EverySubscriberGotEverySeq {
			yes = "yes"
		}
		fmt.Fprintf(w, "\nfirehose: %d subscribers, %d acked commits; events per subscriber %d..%d, bench commits %d..%d, last seq %d\n",
			f.Subscribers, f.AckedCommits, f.EventsMin, f.EventsMax, f.BenchCommitsMin, f.BenchCommitsMax, f.LastSeq)
		fmt.Fprintf(w, "  lag max %.1f ms, final catch-up %.1f ms; every subscriber got every seq: %s\n", f.LagMaxMs, f.FinalCatchUpMs, yes)
		for _, p := range f.Problems {
			fmt.Fprintf(w, "  problem: %s\n", p)
		}
	}
	if r.Pass != nil {
		r.Pass.print(w, r.Mix, r.Pass.RSSAfterMB > 0)
	}
	fmt.Fprintln(w)
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server pid %d RSS: start %.1f MB, end %.1f MB, peak (VmHWM) %.1f MB; CPU %.2f cores\n",
			s.PID, s.RSSStartMB, s.RSSEndMB, s.RSSPeakMB, s.CPUCores)
	}
	fmt.Fprintf(w, "bench process CPU %.2f cores", r.BenchCPUCores)
	if r.BoxCPUCores > 0 {
		fmt.Fprintf(w, "; whole machine %.2f of %d cores busy", r.BoxCPUCores, r.BoxCores)
	}
	fmt.Fprintln(w)
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// readRSS returns a process's resident and peak resident set in MB.
func readRSS(pid int) (rss, hwm float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	return rss, hwm, nil
}

// procCPU returns a process's user+system CPU time from /proc/PID/stat
// (in clock ticks of 1/100 s, Linux's USER_HZ).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it follow ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// boxCPU is the machine's busy CPU time so far (all but idle and iowait in
// /proc/stat's first line), or 0 where there is no /proc.
func boxCPU() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, f := range fields[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
