package mst_test

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/pdslog/pdslog/mst"
)

// A commit on a repository loaded lazily from a block store, and the check a
// firehose consumer makes with only the blocks of the #commit event.
func Example() {
	ctx := context.Background()
	store := mst.MemBlocks{}
	rec := cid.MustParse("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454")

	// A new repository with two records.
	t := mst.NewEmpty(store)
	for _, key := range []string{"app.bsky.feed.post/3l5a", "app.bsky.feed.like/3l5b"} {
		if _, err := t.Put(ctx, key, rec); err != nil {
			panic(err)
		}
	}
	first, err := t.Commit(ctx)
	if err != nil {
		panic(err)
	}
	store.Put(first.NewBlocks...)

	// A later commit: load at the root (one block read), write, commit.
	t, err = mst.Load(ctx, store, first.Root)
	if err != nil {
		panic(err)
	}
	if _, err := t.Delete(ctx, "app.bsky.feed.like/3l5b"); err != nil {
		panic(err)
	}
	if _, err := t.Put(ctx, "app.bsky.feed.post/3l5c", rec); err != nil {
		panic(err)
	}
	res, err := t.Commit(ctx)
	if err != nil {
		panic(err)
	}
	store.Put(res.NewBlocks...)
	for _, op := range res.Ops {
		fmt.Printf("%s create=%v delete=%v\n", op.Key, !op.Prev.Defined(), !op.Val.Defined())
	}

	// The consumer: only the event's blocks, inverted back to prevData.
	event := mst.MemBlocks{}
	event.Put(res.NewBlocks...)
	event.Put(res.ProofBlocks...)
	prev, err := mst.Invert(ctx, event, res.Root, res.Ops)
	fmt.Println(prev == res.PrevRoot, err)

	// Listing a collection, newest first.
	err = t.WalkReverse(ctx, "app.bsky.feed.post0", func(key string, _ cid.Cid) error {
		fmt.Println(key)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// app.bsky.feed.like/3l5b create=false delete=true
	// app.bsky.feed.post/3l5c create=true delete=false
	// true <nil>
	// app.bsky.feed.post/3l5c
	// app.bsky.feed.post/3l5a
}
