package eventlog

import (
	"context"
	"errors"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func testLog(t *testing.T) *Log {
	t.Helper()
	l, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	did := syntax.DID("did:plc:verify")
	clock := syntax.NewTIDClock(0)
	l := testLog(t)
	var rev syntax.TID
	data := testCID("data0")
	var prevData = testCID("")
	for i := range 10 {
		next := clock.Next()
		ev := &Event{Kind: KindCommit, DID: did, Commit: &Commit{Rev: next, Since: rev, Commit: testCID("c" + next.String()), Data: data}}
		if i > 0 {
			ev.Commit.PrevData = prevData
		}
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
		rev, prevData = next, data
	}
	var seen []Seq
	if err := l.Verify(ctx, &VerifyOptions{Progress: func(s Seq) { seen = append(seen, s) }}); err != nil {
		t.Fatalf("clean log: %v", err)
	}
	if len(seen) != 10 {
		t.Fatalf("progress saw %d events", len(seen))
	}
	// A checker's complaint is reported with its seq.
	boom := errors.New("bad signature")
	err := l.Verify(ctx, &VerifyOptions{Check: func(_ context.Context, ev *Event) error {
		if ev.Seq == 7 {
			return boom
		}
		return nil
	}})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 7 || ve.DID != did {
		t.Fatalf("err = %v, want divergence at seq 7", err)
	}
	// A missing event (a hole in the seqs) is reported where it is.
	if err := l.db.Delete(eventKey(4), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(ctx, nil); !errors.As(err, &ve) || ve.Seq != 4 {
		t.Fatalf("err = %v, want divergence at seq 4", err)
	}
}

func TestVerifyBrokenChain(t *testing.T) {
	ctx := context.Background()
	did := syntax.DID("did:plc:verify")
	l := testLog(t)
	clock := syntax.NewTIDClock(0)
	r1, r2 := clock.Next(), clock.Next()
	ev1 := &Event{Kind: KindCommit, DID: did, Commit: &Commit{Rev: r1, Commit: testCID("c1"), Data: testCID("d1")}}
	ev2 := &Event{Kind: KindCommit, DID: did, Commit: &Commit{Rev: r2, Since: r1, Commit: testCID("c2"), Data: testCID("d2"), PrevData: testCID("d1")}}
	if _, err := l.Append(ctx, ev1, ev2); err != nil {
		t.Fatal(err)
	}
	// Rewrite seq 2 behind the log's back with a prevData that does not chain.
	bad := *ev2
	bc := *ev2.Commit
	bc.PrevData = testCID("other")
	bad.Commit = &bc
	val, err := encodeValue(&bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.db.Set(eventKey(2), val, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	var ve *VerifyError
	if err := l.Verify(ctx, nil); !errors.As(err, &ve) || ve.Seq != 2 {
		t.Fatalf("err = %v, want divergence at seq 2", err)
	}
}

// testCID returns a deterministic dag-cbor CID for s ("" gives cid.Undef).
func testCID(s string) cid.Cid {
	if s == "" {
		return cid.Undef
	}
	h, err := cid.V1Builder{Codec: cid.DagCBOR, MhType: multihash.SHA2_256}.Sum([]byte(s))
	if err != nil {
		panic(err)
	}
	return h
}
