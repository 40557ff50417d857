package mst

import (
	"context"
	"fmt"
	"testing"

	indigomst "github.com/bluesky-social/indigo/atproto/repo/mst"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	blockstore "github.com/ipfs/go-ipfs-blockstore"
)

// BenchmarkCommit measures one create plus the commit diff on a repository
// of n records (TID keys, the new key after the others, as new posts are):
//
//   - ours-lazy: the intended use. Load the tree at the current root from a
//     map block store, Put, Commit (new blocks and proof blocks), store the
//     new blocks. Nothing is cached between commits but the store.
//   - ours-kept: one Tree kept across commits (nodes it read stay decoded).
//   - indigo: indigo's fully loaded in-memory tree, Insert and
//     WriteDiffBlocks into a fresh block list.
//
// Run: go test -run '^$' -bench Commit -benchtime 1s ./mst/
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		keys := tidKeys(n + 300_000)
		m := make(map[string]cid.Cid, n)
		for i, k := range keys[:n] {
			m[k] = testCID(i)
		}
		_, store, res := buildTree(b, m)
		ctx := context.Background()

		b.Run(fmt.Sprintf("n=%d/ours-lazy", n), func(b *testing.B) {
			st := MemBlocks{}
			for c, d := range store {
				st[c] = d
			}
			root := res.Root
			nb := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr, err := Load(ctx, st, root)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tr.Put(ctx, keys[n+i], testCID(i)); err != nil {
					b.Fatal(err)
				}
				r, err := tr.Commit(ctx)
				if err != nil {
					b.Fatal(err)
				}
				st.Put(r.NewBlocks...)
				root = r.Root
				nb += len(r.NewBlocks) + len(r.ProofBlocks)
			}
			b.ReportMetric(float64(nb)/float64(b.N), "blocks/op")
		})

		b.Run(fmt.Sprintf("n=%d/ours-kept", n), func(b *testing.B) {
			st := MemBlocks{}
			for c, d := range store {
				st[c] = d
			}
			tr, err := Load(ctx, st, res.Root)
			if err != nil {
				b.Fatal(err)
			}
			nb := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Put(ctx, keys[n+i], testCID(i)); err != nil {
					b.Fatal(err)
				}
				r, err := tr.Commit(ctx)
				if err != nil {
					b.Fatal(err)
				}
				st.Put(r.NewBlocks...)
				nb += len(r.NewBlocks) + len(r.ProofBlocks)
			}
			b.ReportMetric(float64(nb)/float64(b.N), "blocks/op")
		})

		b.Run(fmt.Sprintf("n=%d/indigo", n), func(b *testing.B) {
			tr, err := indigomst.LoadTreeFromMap(m)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tr.RootCID(); err != nil {
				b.Fatal(err)
			}
			nb := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Insert([]byte(keys[n+i]), testCID(i)); err != nil {
					b.Fatal(err)
				}
				bl := &blockList{}
				if _, err := tr.WriteDiffBlocks(ctx, bl); err != nil {
					b.Fatal(err)
				}
				nb += len(bl.blocks)
			}
			b.ReportMetric(float64(nb)/float64(b.N), "blocks/op")
		})
	}
}

// blockList is the smallest blockstore.Blockstore for WriteDiffBlocks: it
// collects the blocks put into it.
type blockList struct {
	blocks []blocks.Block
}

var _ blockstore.Blockstore = (*blockList)(nil)

func (l *blockList) Put(_ context.Context, b blocks.Block) error {
	l.blocks = append(l.blocks, b)
	return nil
}

func (l *blockList) PutMany(ctx context.Context, bs []blocks.Block) error {
	l.blocks = append(l.blocks, bs...)
	return nil
}

func (l *blockList) DeleteBlock(context.Context, cid.Cid) error { return nil }

func (l *blockList) Has(_ context.Context, c cid.Cid) (bool, error) {
	for _, b := range l.blocks {
		if b.Cid() == c {
			return true, nil
		}
	}
	return false, nil
}

func (l *blockList) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	for _, b := range l.blocks {
		if b.Cid() == c {
			return b, nil
		}
	}
	return nil, ErrMissingBlock
}

func (l *blockList) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	b, err := l.Get(ctx, c)
	if err != nil {
		return 0, err
	}
	return len(b.RawData()), nil
}

func (l *blockList) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	ch := make(chan cid.Cid, len(l.blocks))
	for _, b := range l.blocks {
		ch <- b.Cid()
	}
	close(ch)
	return ch, nil
}

func (l *blockList) HashOnRead(bool) {}
