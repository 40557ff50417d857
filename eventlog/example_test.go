package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

func ExampleLog() {
	dir, err := os.MkdirTemp("", "eventlog-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	l, err := eventlog.Open(dir, &eventlog.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	ctx := context.Background()

	// A repo's first commit names no since; the next one names its rev.
	did := eventlogtest.DID(1)
	first := &eventlog.Event{Kind: eventlog.KindCommit, DID: did, Commit: &eventlog.Commit{
		Rev: "3l7ry4x5rzk2c", Commit: eventlogtest.CID("commit/1"), Data: eventlogtest.CID("data/1"),
		Ops: []eventlog.Op{{Action: eventlog.ActionCreate, Path: "app.bsky.feed.post/3l7ry4x5rzk2c", CID: eventlogtest.CID("post")}},
	}}
	handle := &eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: "alice.test"}}
	// Append returns once the events are durable; several events land atomically.
	last, err := l.Append(ctx, first, handle)
	if err != nil {
		panic(err)
	}
	fmt.Println("appended through seq", last)

	second := &eventlog.Event{Kind: eventlog.KindCommit, DID: did, Commit: &eventlog.Commit{
		Rev: "3l7ry4x5t2k2c", Since: "3l7ry4x5rzk2c", Commit: eventlogtest.CID("commit/2"),
		Data: eventlogtest.CID("data/2"), PrevData: eventlogtest.CID("data/1"),
		Ops: []eventlog.Op{{Action: eventlog.ActionDelete, Path: "app.bsky.feed.post/3l7ry4x5rzk2c", Prev: eventlogtest.CID("post")}},
	}}
	if _, err := l.Append(ctx, second); err != nil {
		panic(err)
	}
	// A commit that does not name the repo's current rev is refused.
	_, err = l.Append(ctx, &eventlog.Event{Kind: eventlog.KindCommit, DID: did, Commit: &eventlog.Commit{
		Rev: "3l7ry4x5u4c2c", Since: "3l7ry4x5rzk2c", Commit: eventlogtest.CID("commit/2b"),
		Data: eventlogtest.CID("data/2b"), PrevData: eventlogtest.CID("data/1"),
	}})
	fmt.Println("stale commit refused:", errors.Is(err, eventlog.ErrRevConflict))

	// Readers see every durable event after their cursor, in seq order.
	it, err := l.Iter(ctx, 0)
	if err != nil {
		panic(err)
	}
	for it.Next() {
		ev := it.Event()
		switch ev.Kind {
		case eventlog.KindCommit:
			fmt.Println(ev.Seq, ev.Kind, ev.Commit.Rev, ev.Commit.Ops[0].Action)
		case eventlog.KindIdentity:
			fmt.Println(ev.Seq, ev.Kind, ev.Identity.Handle)
		}
	}
	if err := it.Close(); err != nil {
		panic(err)
	}
	head, _ := l.RepoHead(ctx, did)
	fmt.Println("head", l.Head(), "repo at", head.Rev, "seq", head.Seq)
	// Output:
	// appended through seq 2
	// stale commit refused: true
	// 1 commit 3l7ry4x5rzk2c create
	// 2 identity alice.test
	// 3 commit 3l7ry4x5t2k2c delete
	// head 3 repo at 3l7ry4x5t2k2c seq 3
}
