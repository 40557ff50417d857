package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// benchSubscribers are the firehose subscribers of a run. They all start
// from the same cursor, just after a marker commit written before the
// load, so each must see exactly the same events.
type benchSubscribers struct {
	subs   []*benchSubscriber
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type benchSubscriber struct {
	conn *websocket.Conn
	mine map[string]bool // the bench's DIDs

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

func (b *bench) subscribeURL(cursor int64) string {
	u := "ws" + strings.TrimPrefix(b.c.target, "http") + "/xrpc/com.atproto.sync.subscribeRepos"
	if cursor >= 0 {
		u += "?cursor=" + strconv.FormatInt(cursor, 10)
	}
	return u
}

func (b *bench) dial(ctx context.Context, cursor int64) (*websocket.Conn, error) {
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
func (b *bench) marker(ctx context.Context) (int64, error) {
	probe, err := b.dial(ctx, -1)
	if err != nil {
		return 0, err
	}
	defer probe.CloseNow()
	r := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	if err := b.call(ctx, r, opCreateRecord, b.accts[0]); err != nil {
		return 0, fmt.Errorf("bench: marker write: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, benchCatchUpTimeout)
	defer cancel()
	for {
		_, data, err := probe.Read(rctx)
		if err != nil {
			return 0, fmt.Errorf("bench: waiting for the marker commit on the firehose: %w", err)
		}
		f, err := parseBenchFrame(data)
		if err != nil {
			return 0, err
		}
		if f.op == 1 && f.typ == "#commit" && f.repo == b.accts[0].DID {
			return f.seq, nil
		}
	}
}

func (b *bench) startSubscribers(ctx context.Context) (*benchSubscribers, error) {
	cursor, err := b.marker(ctx)
	if err != nil {
		return nil, err
	}
	b.ackedCommits.Store(0)
	mine := map[string]bool{}
	for _, a := range b.accts {
		mine[a.DID] = true
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &benchSubscribers{cancel: cancel}
	// Dial a few at a time: a thousand handshakes at once would only
	// measure the accept queue.
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 16)
	var dials sync.WaitGroup
	for range b.c.subscribers {
		sem <- struct{}{}
		dials.Go(func() {
			defer func() { <-sem }()
			c, err := b.dial(ctx, cursor)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmpErr(firstErr, err)
				return
			}
			s.subs = append(s.subs, &benchSubscriber{conn: c, mine: mine, lastSeq: cursor})
		})
	}
	dials.Wait()
	if firstErr != nil {
		s.cancel()
		for _, sub := range s.subs {
			sub.conn.CloseNow()
		}
		return nil, firstErr
	}
	for _, sub := range s.subs {
		s.wg.Go(func() { sub.follow(sctx) })
	}
	return s, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (s *benchSubscriber) follow(ctx context.Context) {
	for {
		_, data, err := s.conn.Read(ctx)
		now := time.Now()
		s.mu.Lock()
		if err != nil {
			if !s.closing {
				s.ended = err
			}
			s.mu.Unlock()
			return
		}
		f, err := parseBenchFrame(data)
		if err == nil && f.op != 1 {
			err = fmt.Errorf("error frame %q", f.typ)
		}
		if err != nil {
			s.ended = err
			s.mu.Unlock()
			s.conn.CloseNow()
			return
		}
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
		s.mu.Unlock()
	}
}

// finish waits (bounded) until every subscriber has seen acked commits of
// the bench's accounts, then compares what they saw.
func (s *benchSubscribers) finish(ctx context.Context, acked int64, loadEnd time.Time) *benchFirehose {
	deadline := time.Now().Add(benchCatchUpTimeout)
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
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Let stragglers past the last bench commit (other accounts) settle.
	time.Sleep(50 * time.Millisecond)
	s.close()

	r := &benchFirehose{Subscribers: len(s.subs), AckedCommits: acked, EverySubscriberGotEverySeq: true}
	type seen struct {
		events  int64
		sum     uint64
		lastSeq int64
	}
	var ref *seen
	var catchUp time.Duration
	for i, sub := range s.subs {
		sub.mu.Lock()
		got := seen{sub.events, sub.seqSum, sub.lastSeq}
		if i == 0 {
			r.EventsMin, r.EventsMax, r.BenchCommitsMin, r.BenchCommitsMax = sub.events, sub.events, sub.benchCommits, sub.benchCommits
		}
		r.EventsMin, r.EventsMax = min(r.EventsMin, sub.events), max(r.EventsMax, sub.events)
		r.BenchCommitsMin, r.BenchCommitsMax = min(r.BenchCommitsMin, sub.benchCommits), max(r.BenchCommitsMax, sub.benchCommits)
		r.LastSeq = max(r.LastSeq, sub.lastSeq)
		r.OutOfOrder += sub.outOfOrder
		r.LagMaxMs = max(r.LagMaxMs, ms(sub.lagMax))
		if sub.lastCommitAt.After(loadEnd) {
			catchUp = max(catchUp, sub.lastCommitAt.Sub(loadEnd))
		}
		if sub.ended != nil {
			r.Dropped++
			if len(r.Problems) < 10 {
				r.Problems = append(r.Problems, fmt.Sprintf("subscriber %d ended: %v", i, sub.ended))
			}
		}
		if sub.benchCommits < acked && len(r.Problems) < 10 {
			r.Problems = append(r.Problems, fmt.Sprintf("subscriber %d saw %d of %d acked commits", i, sub.benchCommits, acked))
		}
		sub.mu.Unlock()
		if ref == nil {
			ref = &got
		} else if got != *ref && len(r.Problems) < 10 {
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

func (s *benchSubscribers) close() {
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
