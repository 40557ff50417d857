package pds

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/mst/car"
)

// fakeFlusher counts flushes; each completes when the test closes its
// channel.
type fakeFlusher struct{ started []chan struct{} }

func (f *fakeFlusher) AsyncFlush() (<-chan struct{}, error) {
	c := make(chan struct{})
	f.started = append(f.started, c)
	return c, nil
}

// An import flushes every store once per `every` bytes, whatever the
// total, and never starts a flush while the previous one is in progress:
// what the memtables hold stays bounded by every, not by the repo.
func TestMemtableBound(t *testing.T) {
	ctx := context.Background()
	a, b := &fakeFlusher{}, &fakeFlusher{}
	m := &memtableBound{dbs: []flusher{a, b}, every: 1000}
	for range 9 {
		if err := m.wrote(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.started) != 0 || len(b.started) != 0 {
		t.Fatalf("flushed before %d bytes: %d, %d", m.every, len(a.started), len(b.started))
	}
	if err := m.wrote(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if len(a.started) != 1 || len(b.started) != 1 {
		t.Fatalf("after %d bytes: %d, %d flushes, want 1 each", m.every, len(a.started), len(b.started))
	}
	// The next flush is due, but the first is still running: wrote waits.
	done := make(chan error, 1)
	go func() { done <- m.wrote(ctx, 1000) }()
	select {
	case err := <-done:
		t.Fatalf("wrote returned (%v) while the previous flush was in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(a.started[0])
	close(b.started[0])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(a.started) != 2 || len(b.started) != 2 {
		t.Fatalf("after %d bytes: %d, %d flushes, want 2 each", 2*m.every, len(a.started), len(b.started))
	}
	// A bulk of any size is m.every bytes per flush.
	close(a.started[1])
	close(b.started[1])
	for i := range 100 {
		if err := m.wrote(ctx, 250); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			close(a.started[len(a.started)-1])
			close(b.started[len(b.started)-1])
		}
	}
	if len(a.started) != 27 || len(b.started) != 27 {
		t.Fatalf("%d flushes after %d bytes, want 27", len(a.started), 27*m.every)
	}
	// A cancelled import does not wait for a flush.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	m.pending = append(m.pending, make(chan struct{}))
	if err := m.wait(cctx); err == nil {
		t.Fatal("wait returned nil on a cancelled context")
	}
}

// The spool refuses a block that appears twice, in the batch being filled
// or in one already written (the spool writes a batch per spoolBatchBytes),
// and holds every block of a CAR larger than a batch.
func TestSpoolRefusesRepeatedBlocks(t *testing.T) {
	block := func(i int) car.Block {
		data := bytes.Repeat([]byte{byte(i)}, 300<<10)
		c, err := cid.NewPrefixV1(cid.Raw, multihash.SHA2_256).Sum(data)
		if err != nil {
			t.Fatal(err)
		}
		return car.Block{CID: c, Data: data}
	}
	var blocks []car.Block
	for i := range 12 { // 3.6 MB: several batches
		blocks = append(blocks, block(i))
	}
	p := &PDS{Dir: t.TempDir()}
	for _, tc := range []struct {
		name   string
		blocks []car.Block
		twice  bool
	}{
		{"all distinct", blocks, false},
		{"twice in a batch", append(slices.Clone(blocks[:2]), blocks[1]), true},
		{"twice across batches", append(slices.Clone(blocks), blocks[0]), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := car.Marshal([]cid.Cid{tc.blocks[0].CID}, tc.blocks...)
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.openSpool()
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			_, err = s.fill(bytes.NewReader(data), 1<<30, 1000)
			if tc.twice {
				if err == nil || !strings.Contains(err.Error(), "twice") {
					t.Fatalf("fill: %v, want a block appearing twice", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range tc.blocks {
				got, err := s.Get(context.Background(), b.CID)
				if err != nil || !bytes.Equal(got, b.Data) {
					t.Fatalf("block %s: %d bytes, %v", b.CID, len(got), err)
				}
			}
		})
	}
}
