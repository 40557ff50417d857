package commit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/mst/car"
)

// verifyAll runs a fresh Verifier over the log and returns its verdict.
func verifyAll(t *testing.T, l *eventlog.Log) error {
	t.Helper()
	return l.Verify(context.Background(), &eventlog.VerifyOptions{Check: commit.NewVerifier().Check})
}

// tamper returns a copy of a commit event with f applied to its payload.
func tamper(ev *eventlog.Event, f func(c *eventlog.Commit)) *eventlog.Event {
	cp := *ev
	c := *ev.Commit
	c.Ops = append([]eventlog.Op{}, c.Ops...)
	f(&c)
	cp.Commit = &c
	return &cp
}

func TestVerifierCatchesTampering(t *testing.T) {
	ctx := context.Background()
	l := eventlogtest.Open(t, nil)
	r := newRepo(t, l, false)
	if _, err := r.commit(t, nil); err != nil {
		t.Fatal(err)
	}
	var writes []commit.Write
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		writes = append(writes, create("app.bsky.feed.post", k, post(k)))
	}
	if _, err := r.commit(t, writes); err != nil {
		t.Fatal(err)
	}
	res, err := r.commit(t, []commit.Write{
		create("app.bsky.feed.post", "i", post("i")),
		{Action: eventlog.ActionDelete, Collection: "app.bsky.feed.post", RKey: "c"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyAll(t, l); err != nil {
		t.Fatalf("clean log: %v", err)
	}

	// Replay the log's events into a verifier, then check variants of the last commit.
	v := commit.NewVerifier()
	it, err := l.Iter(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var last *eventlog.Event
	for it.Next() {
		last = it.Event()
		if last.Seq < res.Event.Seq {
			if err := v.Check(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Check(ctx, last); err != nil {
		t.Fatalf("genuine event refused: %v", err)
	}
	roots, blocks, err := car.Unmarshal(last.Commit.Blocks, nil)
	if err != nil {
		t.Fatal(err)
	}
	withoutBlock := func(drop func(c cid.Cid) bool) []byte {
		var keep []car.Block
		for _, b := range blocks {
			if !drop(b.CID) {
				keep = append(keep, b)
			}
		}
		out, err := car.Marshal(roots, keep...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	other, _ := atcrypto.GeneratePrivateKeyK256()
	tests := []struct {
		name string
		ev   *eventlog.Event
	}{
		{"wrong prevData", tamper(last, func(c *eventlog.Commit) { c.PrevData = eventlogtest.CID("x") })},
		{"op prev changed", tamper(last, func(c *eventlog.Commit) { c.Ops[1].Prev = eventlogtest.CID("y") })},
		{"op dropped", tamper(last, func(c *eventlog.Commit) { c.Ops = c.Ops[:1] })},
		{"record block missing", tamper(last, func(c *eventlog.Commit) {
			c.Blocks = withoutBlock(func(x cid.Cid) bool { return x.Equals(c.Ops[0].CID) })
		})},
		{"proof blocks missing", tamper(last, func(c *eventlog.Commit) {
			c.Blocks = withoutBlock(func(x cid.Cid) bool { return !x.Equals(c.Commit) && !x.Equals(c.Ops[0].CID) && !x.Equals(c.Data) })
		})},
		{"data differs from signed commit", tamper(last, func(c *eventlog.Commit) { c.Data = eventlogtest.CID("z") })},
		{"rev differs from signed commit", tamper(last, func(c *eventlog.Commit) { c.Rev = c.Since })},
		{"commit cid not the root", tamper(last, func(c *eventlog.Commit) { c.Commit = eventlogtest.CID("w") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := v.Check(ctx, tt.ev); !errors.Is(err, commit.ErrVerify) {
				t.Fatalf("err = %v, want ErrVerify", err)
			}
		})
	}
	// A key change makes the old signatures fail.
	if err := v.Check(ctx, commit.SigningKeyEvent(r.did, other)); err != nil {
		t.Fatal(err)
	}
	if err := v.Check(ctx, last); !errors.Is(err, commit.ErrVerify) {
		t.Fatalf("commit under a rotated key: err = %v", err)
	}
	// No key recorded at all.
	if err := commit.NewVerifier().Check(ctx, last); !errors.Is(err, commit.ErrVerify) {
		t.Fatalf("unknown key: err = %v", err)
	}
}
