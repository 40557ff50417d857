package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// BenchmarkReplay measures `pdslog replay` (every projection, from zero) of
// a data dir whose log holds accounts made as createAccount makes them and
// createRecord-like commits of one small post each, interleaved across
// accounts, in log events/s. Sizes come from the environment:
//
//	PDSLOG_REPLAY_EVENTS   about how many events (default 50000)
//	PDSLOG_REPLAY_RECORDS  records per account (default 100)
//	PDSLOG_REPLAY_DIR      keep the generated data dir under this directory
//	                       and reuse it on later runs (default: a temp dir)
//
// e.g. PDSLOG_REPLAY_EVENTS=1000000 PDSLOG_REPLAY_DIR=/tmp go test
// -run '^$' -bench Replay -benchtime 1x ./cmd/pdslog/
func BenchmarkReplay(b *testing.B) {
	events := envInt(b, "PDSLOG_REPLAY_EVENTS", 50_000)
	records := envInt(b, "PDSLOG_REPLAY_RECORDS", 100)
	accts := max(1, events/(records+accountEvents))
	dir := filepath.Join(b.TempDir(), "data")
	if keep := os.Getenv("PDSLOG_REPLAY_DIR"); keep != "" {
		dir = filepath.Join(keep, fmt.Sprintf("pdslog-replay-%dx%d", accts, records))
	}
	if _, err := os.Stat(filepath.Join(dir, "generated")); err != nil {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		n := genReplayLog(b, dir, accts, records)
		b.Logf("generated %d events (%d accounts x %d records) in %s", n, accts, records, time.Since(start).Round(time.Millisecond))
		if err := os.WriteFile(filepath.Join(dir, "generated"), []byte(strconv.Itoa(n)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "generated"))
	if err != nil {
		b.Fatal(err)
	}
	head, _ := strconv.Atoi(string(raw))
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		c := &replayCommand{stdout: io.Discard, stderr: io.Discard}
		if err := c.run(ctx, []string{"--data-dir", dir, "--log-level", "error"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// accountEvents is how many events createAccount appends.
const accountEvents = 6

// genRepo is an account being written by genReplayLog.
type genRepo struct {
	did     syntax.DID
	key     atcrypto.PrivateKeyExportable
	blocks  mst.MemBlocks
	head    *eventlog.RepoHead
	written int
}

// genReplayLog creates the data dir at path (as `pdslog serve` lays it out)
// and appends to its log, through the real commit builder and Append, the
// events of accts accounts (the six createAccount appends) and of records
// createRecord commits each (one app.bsky.feed.post per commit), with up
// to 64 accounts being written at once so that their commits interleave
// in the log. The projections are left empty. It returns the log head.
func genReplayLog(tb testing.TB, path string, accts, records int) int {
	tb.Helper()
	ctx := context.Background()
	d, err := pds.Open(path, &pds.Options{Command: "bench", Logger: discardLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	builder := commit.NewBuilder(nil)
	tids := syntax.NewTIDClock(7)
	// The password hash of every account: hashing is deliberately slow and
	// the hash's value does not matter to replay.
	const hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	newRepo := func(i int) ([]*eventlog.Event, *genRepo) {
		key, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			panic(err)
		}
		r := &genRepo{did: syntax.DID(fmt.Sprintf("did:plc:replay%018d", i)), key: key, blocks: mst.MemBlocks{}}
		genesis := r.commit(ctx, builder, nil)
		sync, err := commit.SyncAfter(genesis)
		if err != nil {
			panic(err)
		}
		handle := syntax.Handle(fmt.Sprintf("replay%d.test", i))
		return []*eventlog.Event{
			commit.SigningKeyEvent(r.did, key),
			events.Must(r.did, &events.AccountCreated{Handle: handle, PasswordHash: hash,
				Email: fmt.Sprintf("replay%d@example.com", i), CreatedAt: "2026-11-26T12:00:00Z"}),
			{Kind: eventlog.KindIdentity, DID: r.did, Identity: &eventlog.Identity{Handle: handle}},
			{Kind: eventlog.KindAccount, DID: r.did, Account: &eventlog.Account{Active: true}},
			genesis,
			sync,
		}, r
	}
	// Builders run on every core; one appender batches their events.
	const window = 64
	out := make(chan []*eventlog.Event, 256)
	workers := max(1, min(4, accts))
	done := make(chan struct{})
	var appendErr error
	total := 0
	go func() {
		defer close(done)
		var batch []*eventlog.Event
		flush := func() {
			if len(batch) == 0 || appendErr != nil {
				batch = batch[:0]
				return
			}
			if _, err := d.Log.Append(ctx, batch...); err != nil {
				appendErr = err
			}
			total += len(batch)
			batch = batch[:0]
		}
		for evs := range out {
			batch = append(batch, evs...)
			if len(batch) >= 2000 {
				flush()
			}
		}
		flush()
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var active []*genRepo
			next := w
			for len(active) > 0 || next < accts {
				for len(active) < window/workers && next < accts {
					evs, r := newRepo(next)
					next += workers
					out <- evs
					active = append(active, r)
				}
				var evs []*eventlog.Event
				keep := active[:0]
				for _, r := range active {
					rec := commit.Write{Action: eventlog.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(tids.Next().String()),
						Record: map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprintf("post %d of %s, of a realistic length with a few words in it", r.written, r.did),
							"createdAt": "2026-11-26T12:00:00.000Z", "langs": []any{"en"}}}
					evs = append(evs, r.commit(ctx, builder, []commit.Write{rec}))
					r.written++
					if r.written < records {
						keep = append(keep, r)
					}
				}
				active = keep
				out <- evs
			}
		})
	}
	wg.Wait()
	close(out)
	<-done
	if appendErr != nil {
		tb.Fatal(appendErr)
	}
	if head := int(d.Log.Head()); head != total {
		tb.Fatalf("log head %d after appending %d events", head, total)
	}
	return total
}

// commit builds r's next commit of writes and advances r as if appended.
func (r *genRepo) commit(ctx context.Context, b *commit.Builder, writes []commit.Write) *eventlog.Event {
	res, err := b.Build(ctx, commit.Repo{DID: r.did, Head: r.head, Key: r.key, Blocks: r.blocks}, writes)
	if err != nil {
		panic(fmt.Sprintf("build commit of %s: %v", r.did, err))
	}
	_, blocks, err := car.Unmarshal(res.Event.Commit.Blocks, &car.ReaderOptions{SkipVerify: true})
	if err != nil {
		panic(err)
	}
	for _, blk := range blocks {
		r.blocks[blk.CID] = blk.Data
	}
	c := res.Event.Commit
	r.head = &eventlog.RepoHead{Rev: c.Rev, Commit: c.Commit, Data: c.Data}
	return res.Event
}
