// Package records is the projection of every repo's current records:
// did/collection/rkey -> record CID and DAG-CBOR bytes, from the ops of
// #commit events and the record blocks in their CAR slices. It answers
// getRecord, listRecords and describeRepo's collections. A deleted
// account's records go with it.
package records

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/mst/car"
	"github.com/pdslog/pdslog/projections"
)

// Name is the projection's name.
const Name = "records"

// ErrNotFound is returned for a record that does not exist.
var ErrNotFound = errors.New("records: not found")

// Projection is the records projection on a projections.Store.
//
// Keys:
//
//	did 0x00 'r' collection 0x00 rkey -> uvarint(len(cid)) cid record-bytes
//	did 0x00 'c' collection           -> uvarint count of records
//	did 0x00 't' collection 0x00 rkey -> takedown ref (takedown.go)
type Projection struct {
	*projections.KV
	// takedowns remembers, per repo, whether it has a takedown, so reads
	// look takedowns up only in repos that have one. A batch that may add
	// one starts a new generation; a batch that only removes takedowns (a
	// reversal, a deleted record or account) leaves entries that say
	// "maybe": a lookup then finds none.
	takedowns projections.GenCache[syntax.DID, bool]
}

// New returns the records projection stored in s.
func New(s *projections.Store) *Projection {
	return &Projection{KV: projections.NewBatchKV(s, Name, applyBatch)}
}

var _ projections.Projection = (*Projection)(nil)

func repoPrefix(did syntax.DID) []byte { return append([]byte(did), 0) }

func collPrefix(did syntax.DID, coll string) []byte {
	k := append(repoPrefix(did), 'r')
	k = append(k, coll...)
	return append(k, 0)
}

func recordKey(did syntax.DID, coll, rkey string) []byte {
	return append(collPrefix(did, coll), rkey...)
}

func countKey(did syntax.DID, coll string) []byte {
	return append(append(repoPrefix(did), 'c'), coll...)
}

// counts are the collection count changes of a batch not yet written:
// each count key is read and written once per batch.
type counts struct {
	delta map[string]int
	order []string
}

func (c *counts) add(k []byte, d int) {
	if c.delta == nil {
		c.delta = map[string]int{}
	}
	if _, ok := c.delta[string(k)]; !ok {
		c.order = append(c.order, string(k))
	}
	c.delta[string(k)] += d
}

func (c *counts) flush(w *projections.Writer) error {
	for _, k := range c.order {
		if d := c.delta[k]; d != 0 {
			if err := addCount(w, []byte(k), d); err != nil {
				return err
			}
		}
	}
	c.delta, c.order = nil, c.order[:0]
	return nil
}

func applyBatch(w *projections.Writer, evs []*eventlog.Event) error {
	var c counts
	for _, ev := range evs {
		if ev.Kind == eventlog.KindAccount && ev.Account.Status == "deleted" {
			// The account's counts go with it: write them first.
			if err := c.flush(w); err != nil {
				return err
			}
		}
		if err := apply(w, &c, ev); err != nil {
			return fmt.Errorf("apply seq %d: %w", ev.Seq, err)
		}
	}
	return c.flush(w)
}

func apply(w *projections.Writer, c *counts, ev *eventlog.Event) error {
	switch ev.Kind {
	case eventlog.KindAccount:
		if ev.Account.Status == "deleted" {
			return w.DeletePrefix(repoPrefix(ev.DID))
		}
		return nil
	case eventlog.KindPrivate:
		return applyPrivate(w, ev)
	case eventlog.KindCommit:
	default:
		return nil
	}
	for _, op := range ev.Commit.Ops {
		coll, rkey, ok := strings.Cut(op.Path, "/")
		if !ok {
			return fmt.Errorf("op path %q", op.Path)
		}
		k := recordKey(ev.DID, coll, rkey)
		// A create names a path that is not in the repo (the commit's
		// MST operation says so): only updates and deletes need a look.
		existed := false
		if op.Action != eventlog.ActionCreate {
			var err error
			if _, existed, err = w.Get(k); err != nil {
				return err
			}
		}
		delta := 0
		switch op.Action {
		case eventlog.ActionCreate, eventlog.ActionUpdate:
			data, ok, err := car.FindBlock(ev.Commit.Blocks, op.CID)
			if err != nil {
				return fmt.Errorf("read blocks: %w", err)
			}
			if !ok {
				return fmt.Errorf("record %s (%s) missing from the commit's blocks", op.Path, op.CID)
			}
			cb := op.CID.KeyString()
			val := binary.AppendUvarint(make([]byte, 0, 2+len(cb)+len(data)), uint64(len(cb)))
			val = append(append(val, cb...), data...)
			if err := w.Set(k, val); err != nil {
				return err
			}
			if !existed {
				delta = 1
			}
		case eventlog.ActionDelete:
			if err := w.Delete(k); err != nil {
				return err
			}
			// A takedown goes with the record (a record made again at
			// the path is served).
			if err := w.Delete(takedownKey(ev.DID, coll, rkey)); err != nil {
				return err
			}
			if existed {
				delta = -1
			}
		}
		if delta != 0 {
			c.add(countKey(ev.DID, coll), delta)
		}
	}
	return nil
}

func addCount(w *projections.Writer, k []byte, delta int) error {
	var n uint64
	if v, ok, err := w.Get(k); err != nil {
		return err
	} else if ok {
		n, _ = binary.Uvarint(v)
	}
	n = uint64(int64(n) + int64(delta))
	if n == 0 {
		return w.Delete(k)
	}
	return w.Set(k, binary.AppendUvarint(nil, n))
}

// Record is a stored record.
type Record struct {
	RKey syntax.RecordKey
	CID  cid.Cid
	Data []byte // DAG-CBOR
}

func decode(rkey string, v []byte) (*Record, error) {
	n, sz := binary.Uvarint(v)
	if sz <= 0 || uint64(len(v)-sz) < n {
		return nil, fmt.Errorf("records: corrupt value")
	}
	_, c, err := cid.CidFromBytes(v[sz : sz+int(n)])
	if err != nil {
		return nil, fmt.Errorf("records: corrupt cid: %w", err)
	}
	return &Record{RKey: syntax.RecordKey(rkey), CID: c, Data: append([]byte{}, v[sz+int(n):]...)}, nil
}

// Get returns a record, or ErrNotFound.
func (p *Projection) Get(ctx context.Context, did syntax.DID, coll syntax.NSID, rkey syntax.RecordKey) (*Record, error) {
	v, ok, err := p.Space.Get(recordKey(did, coll.String(), rkey.String()))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	return decode(rkey.String(), v)
}

// List returns up to limit records of a collection in rkey order (reverse
// when reverse is set), starting after the rkey cursor when it is not "".
// Records taken down (takedown.go) are left out.
func (p *Projection) List(ctx context.Context, did syntax.DID, coll syntax.NSID, cursor string, limit int, reverse bool) ([]*Record, error) {
	prefix := collPrefix(did, coll.String())
	var start []byte
	if cursor != "" {
		start = []byte(cursor)
		if !reverse {
			start = append(start, 0) // strictly after the cursor
		}
	}
	hidden, err := p.hasTakedowns(ctx, did)
	if err != nil {
		return nil, err
	}
	var out []*Record
	err = p.Space.Scan(ctx, prefix, startKey(prefix, start), reverse, func(k, v []byte) error {
		rkey := string(k[len(prefix):])
		if hidden {
			if _, down, err := p.Space.Get(takedownKey(did, coll.String(), rkey)); err != nil {
				return err
			} else if down {
				return nil
			}
		}
		r, err := decode(rkey, v)
		if err != nil {
			return err
		}
		out = append(out, r)
		if len(out) >= limit {
			return io.EOF
		}
		return nil
	})
	return out, err
}

func startKey(prefix, start []byte) []byte {
	if start == nil {
		return nil
	}
	return append(append([]byte{}, prefix...), start...)
}

// Collections returns the collections that hold records in did's repo, in order.
func (p *Projection) Collections(ctx context.Context, did syntax.DID) ([]syntax.NSID, error) {
	prefix := append(repoPrefix(did), 'c')
	var out []syntax.NSID
	err := p.Space.Scan(ctx, prefix, nil, false, func(k, _ []byte) error {
		out = append(out, syntax.NSID(k[len(prefix):]))
		return nil
	})
	return out, err
}

// Count returns how many records did's repo holds.
func (p *Projection) Count(ctx context.Context, did syntax.DID) (int, error) {
	prefix := append(repoPrefix(did), 'c')
	n := 0
	err := p.Space.Scan(ctx, prefix, nil, false, func(_, v []byte) error {
		c, _ := binary.Uvarint(v)
		n += int(c)
		return nil
	})
	return n, err
}
