package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const (
	fillChunk     = 50               // records one worker creates for one account before taking the next job
	streamTimeout = 30 * time.Minute // longest single getRepo stream
	listPage      = 100              // listRecords page size in passes
)

// fillJob is records to create in one account.
type fillJob struct {
	a *account
	n int
}

// fillRecords makes every account hold at least Records records,
// counting what each has and creating the rest at Concurrency.
func (b *runner) fillRecords(ctx context.Context) error {
	jobs, total, err := b.fillJobs(ctx)
	if err != nil || total == 0 {
		return err
	}
	var done atomic.Int64
	stop := b.reportProgress(func(el time.Duration) string {
		n := done.Load()
		return fmt.Sprintf("bench: records: %d of %d created (%s/s)", n, total, human(float64(n)/el.Seconds()))
	})
	err = b.each(ctx, len(jobs), func(ctx context.Context, i int) error {
		r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
		for range jobs[i].n {
			if err := b.call(ctx, r, opCreateRecord, jobs[i].a); err != nil {
				return fmt.Errorf("bench: filling %s with records: %w", jobs[i].a.DID, err)
			}
			done.Add(1)
		}
		return nil
	})
	stop()
	if err == nil {
		fmt.Fprintf(b.stderr, "bench: records: %d created; every account holds at least %d\n", done.Load(), b.cfg.Records)
	}
	return err
}

// fillJobs counts every account's records and returns the jobs that
// create the rest, fillChunk records at most each, and their total.
func (b *runner) fillJobs(ctx context.Context) ([]fillJob, int, error) {
	want := b.cfg.Records
	have := make([]int, len(b.accts))
	if err := b.each(ctx, len(b.accts), func(ctx context.Context, i int) error {
		n, err := b.countRecords(ctx, b.accts[i], want)
		have[i] = n
		return err
	}); err != nil {
		return nil, 0, err
	}
	var jobs []fillJob
	total := 0
	for i, a := range b.accts {
		for need := want - have[i]; need > 0; need -= fillChunk {
			jobs = append(jobs, fillJob{a, min(need, fillChunk)})
			total += min(need, fillChunk)
		}
	}
	return jobs, total, nil
}

// countRecords counts an account's records in every collection, stopping
// once it has counted upTo (0: count them all).
func (b *runner) countRecords(ctx context.Context, a *account, upTo int) (int, error) {
	colls, err := b.collections(ctx, a)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, coll := range colls {
		err := b.listAll(ctx, a, coll, func(page int) bool {
			n += page
			return upTo <= 0 || n < upTo
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (b *runner) collections(ctx context.Context, a *account) ([]string, error) {
	var out struct {
		Collections []string `json:"collections"`
	}
	if err := b.timed(opDescribeRepo, func() error {
		return b.xrpc(ctx, "GET", "com.atproto.repo.describeRepo", url.Values{"repo": {a.DID}}, "", nil, &out)
	}); err != nil {
		return nil, fmt.Errorf("bench: describeRepo %s: %w", a.DID, err)
	}
	return out.Collections, nil
}

// listAll pages through one collection, calling page with each page's
// record count until it returns false or the pages end.
func (b *runner) listAll(ctx context.Context, a *account, coll string, page func(int) bool) error {
	cursor := ""
	for {
		var out struct {
			Cursor  string     `json:"cursor"`
			Records []skipJSON `json:"records"`
		}
		q := url.Values{"repo": {a.DID}, "collection": {coll}, "limit": {strconv.Itoa(listPage)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := b.timed(opListRecords, func() error {
			return b.xrpc(ctx, "GET", "com.atproto.repo.listRecords", q, "", nil, &out)
		}); err != nil {
			return fmt.Errorf("bench: listRecords %s %s: %w", a.DID, coll, err)
		}
		if !page(len(out.Records)) || out.Cursor == "" || len(out.Records) == 0 {
			return nil
		}
		cursor = out.Cursor
	}
}

// skipJSON skips a record's content: only the count matters.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

// getRepo streams an account's whole repo as a CAR and discards it,
// returning its size.
func (b *runner) getRepo(ctx context.Context, did string) (int64, error) {
	var n int64
	err := b.timed(opGetRepo, func() (err error) {
		n, err = b.streamRepo(ctx, did)
		return err
	})
	return n, err
}

func (b *runner) streamRepo(ctx context.Context, did string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", b.cfg.Target+"/xrpc/com.atproto.sync.getRepo?"+url.Values{"did": {did}}.Encode(), nil)
	if err != nil {
		return 0, err
	}
	stream := *b.http
	stream.Timeout = 0 // bounded by ctx instead: a big repo takes longer than a call
	resp, err := stream.Do(req)
	if err != nil {
		return 0, &callError{msg: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, &callError{status: resp.StatusCode, name: "HTTP" + strconv.Itoa(resp.StatusCode), msg: "getRepo " + did}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.ipld.car") {
		return 0, &callError{status: resp.StatusCode, name: "BadContentType", msg: "getRepo " + did + ": " + ct}
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, &callError{msg: err.Error()}
	}
	return n, nil
}

// timed runs one call and records it under op.
func (b *runner) timed(op string, call func() error) error {
	s := b.stats[op]
	start := time.Now()
	err := call()
	if s != nil {
		if err != nil {
			s.fail(errorName(err))
		} else {
			s.ok(time.Since(start))
		}
	}
	return err
}
