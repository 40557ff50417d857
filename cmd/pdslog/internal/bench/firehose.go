package bench

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// subscribers are the firehose subscribers of a run. They all start from
// the same cursor, just after a marker commit written before the load, so
// each must see exactly the same events.
type subscribers struct {
	subs   []*subscriber
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type subscriber struct {
	conn *websocket.Conn
	mine map[string]bool // the run's DIDs

	mu           sync.Mutex
	events       int64
	benchCommits int64
	seqSum       uint64
	lastSeq      int64
	outOfOrder   int64
	lagMax       time.Duration
	lastCommitAt time.Time
	ended        error // why the stream ended before close, if it did
	closing      bool
}

// dialConcurrency bounds the subscribers dialling at once: a thousand
// handshakes at once would only measure the accept queue.
const dialConcurrency = 16

func (b *runner) subscribeURL(cursor int64) string {
	u := "ws" + strings.TrimPrefix(b.cfg.Target, "http") + "/xrpc/com.atproto.sync.subscribeRepos"
	if cursor >= 0 {
		u += "?cursor=" + strconv.FormatInt(cursor, 10)
	}
	return u
}

// dial subscribes from cursor (< 0: none).
func (b *runner) dial(ctx context.Context, cursor int64) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, b.subscribeURL(cursor), nil)
	if err != nil {
		return nil, fmt.Errorf("bench: subscribeRepos: %w", err)
	}
	c.SetReadLimit(16 << 20)
	return c, nil
}

// marker writes one record to the first account and returns its seq, as
// seen on a live subscription.
func (b *runner) marker(ctx context.Context) (int64, error) {
	probe, err := b.dial(ctx, -1)
	if err != nil {
		return 0, err
	}
	defer probe.CloseNow()
	r := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	if err := b.call(ctx, r, opCreateRecord, b.accts[0]); err != nil {
		return 0, fmt.Errorf("bench: marker write: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	for {
		_, data, err := probe.Read(rctx)
		if err != nil {
			return 0, fmt.Errorf("bench: waiting for the marker commit on the firehose: %w", err)
		}
		f, err := parseFrame(data)
		if err != nil {
			return 0, err
		}
		if f.op == 1 && f.typ == "#commit" && f.repo == b.accts[0].DID {
			return f.seq, nil
		}
	}
}

// startSubscribers writes the marker and connects every subscriber just
// after it.
func (b *runner) startSubscribers(ctx context.Context) (*subscribers, error) {
	cursor, err := b.marker(ctx)
	if err != nil {
		return nil, err
	}
	b.ackedCommits.Store(0)
	mine := map[string]bool{}
	for _, a := range b.accts {
		mine[a.DID] = true
	}
	conns, err := b.dialAll(ctx, cursor)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &subscribers{cancel: cancel}
	for _, c := range conns {
		sub := &subscriber{conn: c, mine: mine, lastSeq: cursor}
		s.subs = append(s.subs, sub)
		s.wg.Go(func() { sub.follow(sctx) })
	}
	return s, nil
}

// dialAll dials Subscribers connections from cursor, a few at a time; if
// one fails, it closes the rest.
func (b *runner) dialAll(ctx context.Context, cursor int64) ([]*websocket.Conn, error) {
	var mu sync.Mutex
	var conns []*websocket.Conn
	var firstErr error
	sem := make(chan struct{}, dialConcurrency)
	var dials sync.WaitGroup
	for range b.cfg.Subscribers {
		sem <- struct{}{}
		dials.Go(func() {
			defer func() { <-sem }()
			c, err := b.dial(ctx, cursor)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmp.Or(firstErr, err)
				return
			}
			conns = append(conns, c)
		})
	}
	dials.Wait()
	if firstErr != nil {
		for _, c := range conns {
			c.CloseNow()
		}
		return nil, firstErr
	}
	return conns, nil
}

// follow reads frames until the stream ends.
func (s *subscriber) follow(ctx context.Context) {
	for {
		_, data, err := s.conn.Read(ctx)
		now := time.Now()
		if err != nil {
			s.end(err, false)
			return
		}
		if err := s.see(data, now); err != nil {
			s.end(err, true)
			s.conn.CloseNow()
			return
		}
	}
}

// end records why the stream ended: a read error unless the run closed
// it, a bad frame always.
func (s *subscriber) end(err error, badFrame bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if badFrame || !s.closing {
		s.ended = err
	}
}

// see counts one frame, received at now; an error frame or one that does
// not parse is an error.
func (s *subscriber) see(data []byte, now time.Time) error {
	f, err := parseFrame(data)
	if err != nil {
		return err
	}
	if f.op != 1 {
		return fmt.Errorf("error frame %q", f.typ)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events++
	if f.seq <= s.lastSeq {
		s.outOfOrder++
	}
	s.lastSeq = f.seq
	s.seqSum += uint64(f.seq)
	if t, err := time.Parse(time.RFC3339Nano, f.time); err == nil {
		s.lagMax = max(s.lagMax, now.Sub(t))
	}
	if f.typ == "#commit" && s.mine[f.repo] {
		s.benchCommits++
		s.lastCommitAt = now
	}
	return nil
}

// finish waits (bounded) until every subscriber has seen acked commits of
// the run's accounts, closes them, then compares what they saw.
func (s *subscribers) finish(ctx context.Context, acked int64, loadEnd time.Time) *FirehoseReport {
	s.awaitCommits(ctx, acked)
	// Let stragglers past the last bench commit (other accounts) settle.
	time.Sleep(50 * time.Millisecond)
	s.close()

	r := &FirehoseReport{Subscribers: len(s.subs), AckedCommits: acked, EverySubscriberGotEverySeq: true}
	var ref *seen
	var catchUp time.Duration
	for i, sub := range s.subs {
		got := sub.tally(i, r, acked, loadEnd, &catchUp)
		if ref == nil {
			ref = &got
		} else if got != *ref && len(r.Problems) < maxProblems {
			r.Problems = append(r.Problems, fmt.Sprintf("subscriber %d saw %d events up to seq %d, subscriber 0 %d up to %d",
				i, got.events, got.lastSeq, ref.events, ref.lastSeq))
		}
	}
	r.FinalCatchUpMs = ms(catchUp)
	if len(r.Problems) > 0 || r.OutOfOrder > 0 || r.BenchCommitsMin < acked {
		r.EverySubscriberGotEverySeq = false
	}
	return r
}

// maxProblems bounds the problems a firehose report lists.
const maxProblems = 10

// seen is what one subscriber saw, to compare with the others.
type seen struct {
	events  int64
	sum     uint64
	lastSeq int64
}

// awaitCommits waits, at most catchUpTimeout, until every subscriber still
// following has seen acked commits of the run's accounts.
func (s *subscribers) awaitCommits(ctx context.Context, acked int64) {
	deadline := time.Now().Add(catchUpTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		behind := false
		for _, sub := range s.subs {
			sub.mu.Lock()
			if sub.ended == nil && sub.benchCommits < acked {
				behind = true
			}
			sub.mu.Unlock()
		}
		if !behind {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tally adds subscriber i's counts to r and catchUp and returns what it saw.
func (s *subscriber) tally(i int, r *FirehoseReport, acked int64, loadEnd time.Time, catchUp *time.Duration) seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i == 0 {
		r.EventsMin, r.EventsMax, r.BenchCommitsMin, r.BenchCommitsMax = s.events, s.events, s.benchCommits, s.benchCommits
	}
	r.EventsMin, r.EventsMax = min(r.EventsMin, s.events), max(r.EventsMax, s.events)
	r.BenchCommitsMin, r.BenchCommitsMax = min(r.BenchCommitsMin, s.benchCommits), max(r.BenchCommitsMax, s.benchCommits)
	r.LastSeq = max(r.LastSeq, s.lastSeq)
	r.OutOfOrder += s.outOfOrder
	r.LagMaxMs = max(r.LagMaxMs, ms(s.lagMax))
	if s.lastCommitAt.After(loadEnd) {
		*catchUp = max(*catchUp, s.lastCommitAt.Sub(loadEnd))
	}
	if s.ended != nil {
		r.Dropped++
		if len(r.Problems) < maxProblems {
			r.Problems = append(r.Problems, fmt.Sprintf("subscriber %d ended: %v", i, s.ended))
		}
	}
	if s.benchCommits < acked && len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf("subscriber %d saw %d of %d acked commits", i, s.benchCommits, acked))
	}
	return seen{s.events, s.seqSum, s.lastSeq}
}

func (s *subscribers) close() {
	for _, sub := range s.subs {
		sub.mu.Lock()
		sub.closing = true
		sub.mu.Unlock()
	}
	s.cancel()
	for _, sub := range s.subs {
		sub.conn.CloseNow()
	}
	s.wg.Wait()
}
