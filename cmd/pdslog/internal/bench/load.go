package bench

import (
	"context"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// client runs calls chosen from the mix on account i mod Accounts until
// the deadline.
func (b *runner) client(ctx context.Context, deadline time.Time, i int) {
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
			b.stats[op].fail(errorName(err))
			continue
		}
		b.stats[op].ok(d)
	}
}

// choose picks an operation of the mix by weight.
func (b *runner) choose(r *rand.Rand) string {
	n := r.IntN(b.weight)
	for _, w := range b.mix {
		if n < w.weight {
			return w.op
		}
		n -= w.weight
	}
	return b.mix[0].op
}

// call makes one call of op as acct.
func (b *runner) call(ctx context.Context, r *rand.Rand, op string, acct *account) error {
	switch op {
	case opCreateRecord:
		return b.createRecord(ctx, r, acct)
	case opApplyWrites:
		return b.applyWrites(ctx, r, acct)
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

func (b *runner) createRecord(ctx context.Context, r *rand.Rand, acct *account) error {
	var out struct {
		URI string `json:"uri"`
	}
	if err := b.xrpc(ctx, "POST", "com.atproto.repo.createRecord", nil, acct.AccessJwt, map[string]any{
		"repo": acct.DID, "collection": "app.bsky.feed.post", "record": post(r)}, &out); err != nil {
		return err
	}
	b.ackedCommits.Add(1)
	acct.remember(rkeyOf(out.URI))
	return nil
}

// applyWrites creates three posts in one commit.
func (b *runner) applyWrites(ctx context.Context, r *rand.Rand, acct *account) error {
	var writes []any
	for range 3 {
		writes = append(writes, map[string]any{"$type": "com.atproto.repo.applyWrites#create",
			"collection": "app.bsky.feed.post", "value": post(r)})
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
		acct.remember(rkeyOf(res.URI))
	}
	return nil
}

func post(r *rand.Rand) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": "pdslog bench post " + strconv.FormatUint(r.Uint64(), 36),
		"createdAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "langs": []any{"en"}}
}

// pacer hands out at most perMinute tokens a minute (0: none).
type pacer struct {
	mu        sync.Mutex
	perMinute int
	start     time.Time
	taken     int
}

func newPacer(perMinute int) *pacer {
	return &pacer{perMinute: perMinute, start: time.Now()}
}

func (p *pacer) take() bool {
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
