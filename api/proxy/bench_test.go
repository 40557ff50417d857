package proxy_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/proxy"
)

// BenchmarkLocalSince is read-after-write's lookup of the records an
// AppView one commit behind has not seen, for accounts with few and many
// earlier commits: the binary search over the log keeps it near
// logarithmic in the account's history.
func BenchmarkLocalSince(b *testing.B) {
	for _, commits := range []int{20, 2000} {
		b.Run(fmt.Sprintf("commits=%d", commits), func(b *testing.B) {
			env := apitest.New(b, func(o *api.Config) { o.RateLimits = false })
			a := env.CreateAccount()
			var revs []string
			for i := range commits {
				r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post",
					"record": map[string]any{"text": fmt.Sprint("post ", i), "createdAt": "2026-01-01T00:00:00Z"}})
				if r.Status != 200 {
					b.Fatalf("createRecord: %d %s", r.Status, r.Body)
				}
				var out struct{ Commit struct{ Rev string } }
				r.JSON(b, &out)
				revs = append(revs, out.Commit.Rev)
			}
			p := proxy.New(proxy.Config{}, proxy.Deps{PDS: env.PDS})
			ctx := context.Background()
			since := revs[len(revs)-2]
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				n, posts, err := p.LocalSinceCount(ctx, a.DID, since)
				if err != nil || n != 1 || posts != 1 {
					b.Fatalf("%d records, %d posts, %v", n, posts, err)
				}
			}
		})
	}
}
