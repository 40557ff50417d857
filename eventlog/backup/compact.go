package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/backup/objstore"
)

// Compact tidies the backup. It applies the purges recorded in the
// manifest (account deletions shipped) to every generation: each segment
// holding an event of a deleted account from before its deletion is
// rewritten with those events as tombstones, under the next version of its
// key, and the old version deleted; the account's blobs are deleted from
// the backup; applied purges leave the manifest. Then it merges runs of
// small segments of the current generation (a server writing a little all
// day cuts one every half RPO) into segments of up to SegmentBytes. A
// crash between the steps leaves both the new and the old objects
// (restore and resume pick the new; resume deletes the old), so Compact
// can simply run again.
func (s *Shipper) Compact(ctx context.Context) error {
	if err := s.applyPurges(ctx); err != nil {
		return err
	}
	gen := s.Generation()
	if gen == "" {
		return nil
	}
	n, err := s.mergeSmall(ctx, gen)
	if n > 0 {
		s.log.Info("backup: small segments merged", "generation", gen, "merged", n)
	}
	return err
}

func (s *Shipper) applyPurges(ctx context.Context) error {
	s.mu.Lock()
	purges := slices.Clone(s.man.Purges)
	s.mu.Unlock()
	if len(purges) == 0 {
		return nil
	}
	obj := s.o.Target.Objects
	gens, err := listGenerations(ctx, obj)
	if err != nil {
		return err
	}
	rewritten := 0
	for _, g := range gens {
		n, err := compactGeneration(ctx, obj, g, purges)
		rewritten += n
		if err != nil {
			return fmt.Errorf("backup: compact %s: %w", g, err)
		}
	}
	if s.o.ExternalBlobs == nil {
		for _, p := range purges {
			if err := s.o.Target.Blobs.DeleteAccount(ctx, syntaxDID(p.DID)); err != nil {
				return fmt.Errorf("backup: delete blobs of %s: %w", p.DID, err)
			}
		}
	}
	s.mu.Lock()
	s.man.Purges = slices.DeleteFunc(s.man.Purges, func(p Purge) bool {
		return slices.ContainsFunc(purges, func(q Purge) bool { return q.DID == p.DID && q.Before == p.Before })
	})
	s.dirty = true
	s.mu.Unlock()
	if err := s.writeManifest(ctx, true); err != nil {
		return err
	}
	s.log.Info("backup: purges applied", "accounts", len(purges), "segments_rewritten", rewritten, "generations", len(gens))
	return nil
}

// mergeSmall merges runs of consecutive small segments (each under a
// quarter of SegmentBytes, together under half of it, compressed) of gen
// into one segment each, leaving the last segment alone. It returns how
// many segments were merged away.
func (s *Shipper) mergeSmall(ctx context.Context, gen string) (int, error) {
	obj := s.o.Target.Objects
	var refs []segRef
	c := newChain(func(r segRef) error { refs = append(refs, r); return nil })
	if err := listSegments(ctx, obj, gen, c.add); err != nil {
		return 0, err
	}
	if err := c.done(); err != nil {
		return 0, err
	}
	if len(refs) < 3 {
		return 0, nil
	}
	refs = refs[:len(refs)-1]
	small, limit := int64(s.o.SegmentBytes/4), int64(s.o.SegmentBytes/2)
	merged := 0
	var run []segRef
	var size int64
	flush := func() error {
		defer func() { run, size = nil, 0 }()
		if len(run) < 2 {
			return nil
		}
		b := newSegmentBuilder(run[0].First)
		for _, r := range run {
			data, err := objstore.ReadAll(ctx, obj, r.Key, MaxSegmentRaw)
			if err != nil {
				return err
			}
			seg, err := DecodeSegment(data)
			if err != nil {
				return fmt.Errorf("%s: %w", r.Key, err)
			}
			for i, val := range seg.Values {
				ev, err := eventlog.DecodeStored(val)
				if err != nil {
					return fmt.Errorf("%s: seq %d: %w", r.Key, seg.Header.First+eventlog.Seq(i), err)
				}
				var t int64
				if tm := ev.Time.Time(); !tm.IsZero() {
					t = tm.UnixMilli()
				}
				b.add(seg.Header.First+eventlog.Seq(i), val, string(ev.DID), t)
			}
		}
		out, h := b.encode()
		if err := obj.Put(ctx, segmentKey(gen, h.First, h.Last, 0), bytes.NewReader(out), int64(len(out))); err != nil {
			return err
		}
		for _, r := range run {
			if err := obj.Delete(ctx, r.Key); err != nil {
				return err
			}
		}
		merged += len(run)
		return nil
	}
	for _, r := range refs {
		if r.Size >= small || size+r.Size > limit {
			if err := flush(); err != nil {
				return merged, err
			}
			if r.Size >= small {
				continue
			}
		}
		run = append(run, r)
		size += r.Size
	}
	return merged, flush()
}

// compactGeneration rewrites gen's segments that hold purged events.
func compactGeneration(ctx context.Context, obj objstore.Store, gen string, purges []Purge) (int, error) {
	var maxBefore eventlog.Seq
	for _, p := range purges {
		maxBefore = max(maxBefore, p.Before)
	}
	var refs []segRef
	c := newChain(func(r segRef) error {
		if r.First < maxBefore {
			refs = append(refs, r)
		}
		return nil
	})
	if err := listSegments(ctx, obj, gen, c.add); err != nil {
		return 0, err
	}
	if err := c.done(); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range refs {
		var todo []Purge
		for _, p := range purges {
			if r.First < p.Before {
				todo = append(todo, p)
			}
		}
		h, err := readSegmentHeader(ctx, obj, r.Key)
		if err != nil {
			return n, err
		}
		hit := false
		for _, p := range todo {
			if _, ok := slices.BinarySearch(h.DIDs, p.DID); ok {
				hit = true
			}
		}
		if !hit {
			continue
		}
		data, err := objstore.ReadAll(ctx, obj, r.Key, MaxSegmentRaw)
		if err != nil {
			return n, err
		}
		seg, err := DecodeSegment(data)
		if err != nil {
			return n, fmt.Errorf("%s: %w", r.Key, err)
		}
		b := newSegmentBuilder(seg.Header.First)
		for i, val := range seg.Values {
			seq := seg.Header.First + eventlog.Seq(i)
			ev, err := eventlog.DecodeStored(val)
			if err != nil {
				return n, fmt.Errorf("%s: seq %d: %w", r.Key, seq, err)
			}
			purged := slices.ContainsFunc(todo, func(p Purge) bool { return p.DID == string(ev.DID) && seq < p.Before })
			if ev.Kind == eventlog.KindTombstone || purged {
				b.add(seq, eventlog.TombstoneValue(), "", 0)
				continue
			}
			var t int64
			if tm := ev.Time.Time(); !tm.IsZero() {
				t = tm.UnixMilli()
			}
			b.add(seq, val, string(ev.DID), t)
		}
		out, _ := b.encode()
		key := segmentKey(gen, r.First, r.Last, r.Version+1)
		if err := obj.Put(ctx, key, bytes.NewReader(out), int64(len(out))); err != nil {
			return n, err
		}
		if err := obj.Delete(ctx, r.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// readSegmentHeader reads just the header of a segment object.
func readSegmentHeader(ctx context.Context, obj objstore.Store, key string) (SegmentHeader, error) {
	want := int64(64 << 10)
	for range 2 {
		b, err := obj.GetRange(ctx, key, 0, want)
		if err != nil {
			return SegmentHeader{}, err
		}
		h, _, err := DecodeSegmentHeader(b)
		if errors.Is(err, ErrShortHeader) && int64(len(b)) == want {
			want = maxHeaderLen + 64
			continue
		}
		if err != nil {
			return SegmentHeader{}, fmt.Errorf("%s: %w", key, err)
		}
		return h, nil
	}
	return SegmentHeader{}, fmt.Errorf("%w: %s: header", ErrCorrupt, key)
}
