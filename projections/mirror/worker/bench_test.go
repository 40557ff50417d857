package worker_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/projections/testenv"
)

// BenchmarkReads is the load comparison: the same mix of public reads
// (records, lists, heads, a proof, a whole small repo, a blob) asked,
// several at once, of `pdslog serve` (origin) and of the Worker in workerd
// over the mirror (edge), on this machine. The figures are informational:
// one run, both servers and the client sharing the CPUs; the ratio is
// printed at the end.
//
//	go test -run '^$' -bench Reads -benchtime 3s ./projections/mirror/worker/
func BenchmarkReads(b *testing.B) {
	testenv.Slow(b, "runs npm/Node.js (Miniflare, a PLC directory) and a pdslog binary")
	w := newWorld(b)
	alice, bob := w.by["alice.test"], w.by["bob.test"]
	var mix []string
	for _, a := range []*account{alice, bob} {
		n := 0
		for p := range a.records {
			if !strings.HasPrefix(p, "app.bsky.feed.post/") || n == 4 {
				continue
			}
			n++
			coll, rkey, _ := strings.Cut(p, "/")
			mix = append(mix, "/xrpc/com.atproto.repo.getRecord?"+q("repo", a.did, "collection", coll, "rkey", rkey))
		}
		mix = append(mix,
			"/xrpc/com.atproto.repo.listRecords?"+q("repo", a.handle, "collection", "app.bsky.feed.post", "limit", "25"),
			"/xrpc/com.atproto.sync.getLatestCommit?"+q("did", a.did),
			"/xrpc/com.atproto.sync.getRepoStatus?"+q("did", a.did),
			"/xrpc/com.atproto.repo.describeRepo?"+q("repo", a.did),
			"/xrpc/com.atproto.sync.getRecord?"+q("did", a.did, "collection", "app.bsky.feed.post", "rkey", "nonexistent"),
			"/xrpc/com.atproto.sync.listBlobs?"+q("did", a.did),
		)
	}
	mix = append(mix, "/xrpc/com.atproto.sync.getRepo?"+q("did", bob.did),
		"/xrpc/com.atproto.sync.getBlob?"+q("did", alice.did, "cid", alice.blobs[0]),
		"/xrpc/com.atproto.sync.listRepos")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	perRead := map[string]time.Duration{}
	for _, target := range []struct{ name, base string }{{"origin", w.pds.URL}, {"edge", w.edge.URL}, {"edge-direct", w.edge.Direct}} {
		b.Run(target.name, func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					path := mix[i%len(mix)]
					i++
					resp, err := client.Get(target.base + path)
					if err != nil {
						b.Error(err)
						return
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 {
						b.Errorf("%s%s: %d %v", target.base, path, resp.StatusCode, err)
						return
					}
				}
			})
			perRead[target.name] = b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
	if perRead["origin"] > 0 && perRead["edge"] > 0 && perRead["edge-direct"] > 0 {
		fmt.Printf("reads: %d in the mix; per read: origin %v, edge %v, edge-direct %v; throughput edge/origin %.3f, edge-direct/origin %.3f\n",
			len(mix), perRead["origin"], perRead["edge"], perRead["edge-direct"],
			float64(perRead["origin"])/float64(perRead["edge"]), float64(perRead["origin"])/float64(perRead["edge-direct"]))
	}
}
