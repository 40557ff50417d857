package commit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/mst/car"
)

// BenchmarkPipeline measures the whole per-write path of one createRecord:
// encode the record, MST insert, diff + proof, sign the commit, build the
// CAR slice, and (durable) append it to a real log with its fsync, for one
// repo written serially and 16 or 64 repos written concurrently (each repo by one
// writer, as the server serialises writes per repo). "cpu" skips the
// append: the CPU-only ceiling, measured in the same run.
func BenchmarkPipeline(b *testing.B) {
	const prefill = 1000 // records per repo before measuring
	for _, mode := range []string{"cpu", "durable"} {
		for _, repos := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/repos=%d", mode, repos), func(b *testing.B) {
				ctx := context.Background()
				st := committest.NewStream(1, repos)
				for _, r := range st.Repos {
					for range prefill / 200 {
						st.Commit(r, st.RandomWrites(r, 200))
					}
				}
				var l *eventlog.Log
				if mode == "durable" {
					l = eventlogtest.Open(b, nil)
					for _, r := range st.Repos {
						// The log must know each repo's head for its CAS.
						if _, err := l.Append(ctx, &eventlog.Event{Kind: eventlog.KindSync, DID: r.DID, Sync: &eventlog.Sync{
							Rev: r.Head.Rev, Commit: r.Head.Commit, Data: r.Head.Data, Blocks: []byte{}}}); err != nil {
							b.Fatal(err)
						}
					}
				}
				builder := commit.NewBuilder(nil)
				tids := syntax.NewTIDClock(9)
				var next atomic.Int64
				b.ResetTimer()
				var wg sync.WaitGroup
				for _, r := range st.Repos {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							w := commit.Write{Action: eventlog.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(tids.Next().String()),
								Record: map[string]any{"text": "a post of a realistic length, with a few words in it 🦋", "createdAt": "2026-11-26T12:00:00.000Z", "langs": []any{"en"}}}
							res, err := builder.Build(ctx, commit.Repo{DID: r.DID, Head: r.Head, Key: r.Key, Blocks: r.Blocks}, []commit.Write{w})
							if err != nil {
								b.Error(err)
								return
							}
							if l != nil {
								if _, err := l.Append(ctx, res.Event); err != nil {
									b.Error(err)
									return
								}
							}
							_, blocks, err := car.Unmarshal(res.Event.Commit.Blocks, &car.ReaderOptions{SkipVerify: true})
							if err != nil {
								b.Error(err)
								return
							}
							for _, blk := range blocks {
								r.Blocks[blk.CID] = blk.Data
							}
							c := res.Event.Commit
							r.Head = &eventlog.RepoHead{Rev: c.Rev, Commit: c.Commit, Data: c.Data}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			})
		}
	}
}
