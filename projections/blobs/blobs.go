package blobs

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/mst/car"
	"github.com/pdslog/pdslog/projections"
)

// Name is the projection's name.
const Name = "blobs"

// ErrNotFound is returned for a blob the index does not know.
var ErrNotFound = errors.New("blobs: not found")

// Blob is what the index knows of one account's blob.
type Blob struct {
	CID          string `json:"cid"`
	Uploaded     bool   `json:"uploaded"` // false: referenced but never uploaded (missing)
	MimeType     string `json:"mimeType,omitempty"`
	DeclaredMime string `json:"declaredMime,omitempty"`
	Size         int64  `json:"size,omitempty"`
	UploadedAt   string `json:"uploadedAt,omitempty"`
	Refs         int    `json:"refs,omitempty"`         // current records referencing it
	FirstRef     string `json:"firstRef,omitempty"`     // a referencing record's path (listMissingBlobs)
	Unreferenced int64  `json:"unreferenced,omitempty"` // unix ns since when it has no references; 0 while referenced
	Quarantined  bool   `json:"quarantined,omitempty"`
}

// pathRefs are the blobs a current record references.
type pathRefs struct {
	Rev  syntax.TID `json:"rev"`
	CIDs []string   `json:"cids"`
}

// Projection is the blobs projection on a projections.Store.
//
// Keys:
//
//	did 0x00 'b' cid                      -> JSON Blob
//	did 0x00 'p' collection/rkey          -> JSON pathRefs (records with blobs)
//	0x01 'g' be64(unreferenced) did 0x00 cid -> "" (collection candidates)
type Projection struct{ *projections.KV }

// New returns the blobs projection stored in s.
func New(s *projections.Store) *Projection { return &Projection{projections.NewKV(s, Name, apply)} }

var _ projections.Projection = (*Projection)(nil)

func repoPrefix(did syntax.DID) []byte { return append([]byte(did), 0) }
func blobKey(did syntax.DID, c string) []byte {
	return append(append(repoPrefix(did), 'b'), c...)
}
func pathKey(did syntax.DID, path string) []byte {
	return append(append(repoPrefix(did), 'p'), path...)
}

var candidatePrefix = []byte{0x01, 'g'}

func candidateKey(at int64, did syntax.DID, c string) []byte {
	k := binary.BigEndian.AppendUint64(append([]byte{}, candidatePrefix...), uint64(at))
	return append(append(k, repoPrefix(did)...), c...)
}

func eventTime(ev *eventlog.Event) int64 {
	t := ev.Time.Time()
	if t.IsZero() {
		return 1 // never 0, which means "referenced"
	}
	return t.UnixNano()
}

func getBlob(w *projections.Writer, did syntax.DID, c string) (*Blob, error) {
	v, ok, err := w.Get(blobKey(did, c))
	if err != nil || !ok {
		return nil, err
	}
	var b Blob
	if err := json.Unmarshal(v, &b); err != nil {
		return nil, fmt.Errorf("blobs: corrupt state of %s: %w", c, err)
	}
	return &b, nil
}

func putBlob(w *projections.Writer, did syntax.DID, b *Blob) error {
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return w.Set(blobKey(did, b.CID), v)
}

// setUnreferenced moves b's candidate entry to at (0 removes it).
func setUnreferenced(w *projections.Writer, did syntax.DID, b *Blob, at int64) error {
	if b.Unreferenced != 0 {
		if err := w.Delete(candidateKey(b.Unreferenced, did, b.CID)); err != nil {
			return err
		}
	}
	b.Unreferenced = at
	if at != 0 && b.Uploaded {
		return w.Set(candidateKey(at, did, b.CID), nil)
	}
	return nil
}

func apply(w *projections.Writer, ev *eventlog.Event) error {
	switch ev.Kind {
	case eventlog.KindAccount:
		if ev.Account.Status == "deleted" {
			return deleteAccount(w, ev.DID)
		}
	case eventlog.KindPrivate:
		return applyPrivate(w, ev)
	case eventlog.KindCommit:
		return applyCommit(w, ev)
	}
	return nil
}

func deleteAccount(w *projections.Writer, did syntax.DID) error {
	var cands [][]byte
	err := w.Scan(context.Background(), append(repoPrefix(did), 'b'), nil, false, func(_, v []byte) error {
		var b Blob
		if err := json.Unmarshal(v, &b); err != nil {
			return err
		}
		if b.Unreferenced != 0 {
			cands = append(cands, candidateKey(b.Unreferenced, did, b.CID))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range cands {
		if err := w.Delete(k); err != nil {
			return err
		}
	}
	return w.DeletePrefix(repoPrefix(did))
}

func applyPrivate(w *projections.Writer, ev *eventlog.Event) error {
	switch ev.Private.Type {
	case events.TypeBlobUploaded, events.TypeBlobDeleted, events.TypeBlobQuarantine:
	default:
		return nil
	}
	p, err := events.Decode(ev.Private)
	if err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	switch p := p.(type) {
	case *events.BlobUploaded:
		return applyUploaded(w, ev, p)
	case *events.BlobDeleted:
		return applyDeleted(w, ev, p)
	case *events.BlobQuarantine:
		return applyQuarantine(w, ev, p)
	}
	return nil
}

func applyUploaded(w *projections.Writer, ev *eventlog.Event, u *events.BlobUploaded) error {
	b, err := getBlob(w, ev.DID, u.CID)
	if err != nil {
		return err
	}
	if b == nil {
		b = &Blob{CID: u.CID}
	}
	if !b.Uploaded {
		b.Uploaded, b.MimeType, b.DeclaredMime, b.Size, b.UploadedAt = true, u.MimeType, u.DeclaredMime, u.Size, ev.Time.String()
	}
	// A fresh upload of an unreferenced blob restarts its grace period.
	if b.Refs == 0 {
		if err := setUnreferenced(w, ev.DID, b, eventTime(ev)); err != nil {
			return err
		}
	}
	return putBlob(w, ev.DID, b)
}

func applyDeleted(w *projections.Writer, ev *eventlog.Event, d *events.BlobDeleted) error {
	b, err := getBlob(w, ev.DID, d.CID)
	if err != nil || b == nil {
		return err
	}
	if err := setUnreferenced(w, ev.DID, b, 0); err != nil {
		return err
	}
	if b.Refs > 0 {
		// Still referenced (cannot happen through the collector, which
		// checks under the account's write lock): keep it as missing.
		*b = Blob{CID: b.CID, Refs: b.Refs, FirstRef: b.FirstRef}
		return putBlob(w, ev.DID, b)
	}
	return w.Delete(blobKey(ev.DID, d.CID))
}

func applyQuarantine(w *projections.Writer, ev *eventlog.Event, q *events.BlobQuarantine) error {
	b, err := getBlob(w, ev.DID, q.CID)
	if err != nil || b == nil {
		return err
	}
	b.Quarantined = q.On
	return putBlob(w, ev.DID, b)
}

func applyCommit(w *projections.Writer, ev *eventlog.Event) error {
	for _, op := range ev.Commit.Ops {
		k := pathKey(ev.DID, op.Path)
		var old pathRefs
		if op.Action != eventlog.ActionCreate { // a create names a path not in the repo: no refs before
			v, ok, err := w.Get(k)
			if err != nil {
				return err
			}
			if ok {
				if err := json.Unmarshal(v, &old); err != nil {
					return fmt.Errorf("blobs: corrupt refs of %s: %w", op.Path, err)
				}
			}
		}
		var cur []string
		if op.Action != eventlog.ActionDelete {
			data, ok, err := car.FindBlock(ev.Commit.Blocks, op.CID)
			if err != nil {
				return fmt.Errorf("read blocks: %w", err)
			}
			if !ok {
				return fmt.Errorf("record %s (%s) missing from the commit's blocks", op.Path, op.CID)
			}
			for _, r := range RefsOfCBOR(data) {
				cur = append(cur, r.CID)
			}
		}
		for _, c := range old.CIDs {
			if !slices.Contains(cur, c) {
				if err := addRef(w, ev, c, op.Path, -1); err != nil {
					return err
				}
			}
		}
		for _, c := range cur {
			if !slices.Contains(old.CIDs, c) {
				if err := addRef(w, ev, c, op.Path, +1); err != nil {
					return err
				}
			}
		}
		if len(cur) == 0 {
			if len(old.CIDs) > 0 {
				if err := w.Delete(k); err != nil {
					return err
				}
			}
			continue
		}
		v, err := json.Marshal(pathRefs{Rev: ev.Commit.Rev, CIDs: cur})
		if err != nil {
			return err
		}
		if err := w.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}

func addRef(w *projections.Writer, ev *eventlog.Event, c, path string, delta int) error {
	b, err := getBlob(w, ev.DID, c)
	if err != nil {
		return err
	}
	if b == nil {
		if delta < 0 {
			return nil
		}
		b = &Blob{CID: c}
	}
	b.Refs += delta
	switch {
	case b.Refs <= 0:
		b.Refs, b.FirstRef = 0, ""
		if !b.Uploaded {
			return w.Delete(blobKey(ev.DID, c))
		}
		if err := setUnreferenced(w, ev.DID, b, eventTime(ev)); err != nil {
			return err
		}
	case delta > 0:
		if b.FirstRef == "" {
			b.FirstRef = path
		}
		if err := setUnreferenced(w, ev.DID, b, 0); err != nil {
			return err
		}
	}
	return putBlob(w, ev.DID, b)
}

// Get returns did's blob c, or ErrNotFound.
func (p *Projection) Get(ctx context.Context, did syntax.DID, c cid.Cid) (*Blob, error) {
	v, ok, err := p.Space.Get(blobKey(did, c.String()))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	var b Blob
	if err := json.Unmarshal(v, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// Candidate is an unreferenced uploaded blob.
type Candidate struct {
	DID          syntax.DID
	CID          string
	Unreferenced time.Time
}

// Candidates returns up to limit uploaded blobs that have had no reference
// since before cutoff, oldest first.
func (p *Projection) Candidates(ctx context.Context, cutoff time.Time, limit int) ([]Candidate, error) {
	var out []Candidate
	err := p.Space.Scan(ctx, candidatePrefix, nil, false, func(k, _ []byte) error {
		rest := k[len(candidatePrefix):]
		if len(rest) < 8 {
			return fmt.Errorf("blobs: corrupt candidate key %x", k)
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(rest)))
		if !at.Before(cutoff) || len(out) >= limit {
			return io.EOF
		}
		did, c, ok := bytes.Cut(rest[8:], []byte{0})
		if !ok {
			return fmt.Errorf("blobs: corrupt candidate key %x", k)
		}
		out = append(out, Candidate{DID: syntax.DID(did), CID: string(c), Unreferenced: at})
		return nil
	})
	return out, err
}

// List returns up to limit of did's blobs after the CID string cursor, in
// CID string order, that fn accepts.
func (p *Projection) List(ctx context.Context, did syntax.DID, cursor string, limit int, fn func(*Blob) bool) ([]*Blob, error) {
	prefix := append(repoPrefix(did), 'b')
	var start []byte
	if cursor != "" {
		start = append(blobKey(did, cursor), 0)
	}
	var out []*Blob
	err := p.Space.Scan(ctx, prefix, start, false, func(_, v []byte) error {
		var b Blob
		if err := json.Unmarshal(v, &b); err != nil {
			return err
		}
		if fn == nil || fn(&b) {
			out = append(out, &b)
		}
		if len(out) >= limit {
			return io.EOF
		}
		return nil
	})
	return out, err
}

// ReferencedSince returns up to limit distinct CIDs, after cursor in CID
// string order, of did's blobs referenced by current records written in a
// commit whose rev is after since (com.atproto.sync.listBlobs).
func (p *Projection) ReferencedSince(ctx context.Context, did syntax.DID, since syntax.TID, cursor string, limit int) ([]string, error) {
	if since == "" {
		bs, err := p.List(ctx, did, cursor, limit, func(b *Blob) bool { return b.Refs > 0 })
		out := make([]string, len(bs))
		for i, b := range bs {
			out[i] = b.CID
		}
		return out, err
	}
	set := map[string]bool{}
	err := p.Space.Scan(ctx, append(repoPrefix(did), 'p'), nil, false, func(_, v []byte) error {
		var r pathRefs
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if r.Rev > since {
			for _, c := range r.CIDs {
				if c > cursor {
					set[c] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.Sort(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Path returns the record path a blob reference came from, split.
func SplitPath(path string) (syntax.NSID, syntax.RecordKey, bool) {
	coll, rkey, ok := strings.Cut(path, "/")
	return syntax.NSID(coll), syntax.RecordKey(rkey), ok
}

// Counts returns how many distinct blobs did's current records reference
// (checkAccountStatus's expectedBlobs) and how many of did's blobs are
// stored (importedBlobs).
func (p *Projection) Counts(ctx context.Context, did syntax.DID) (referenced, stored int, err error) {
	err = p.Space.Scan(ctx, append(repoPrefix(did), 'b'), nil, false, func(_, v []byte) error {
		var b Blob
		if err := json.Unmarshal(v, &b); err != nil {
			return err
		}
		if b.Refs > 0 {
			referenced++
		}
		if b.Uploaded {
			stored++
		}
		return nil
	})
	return referenced, stored, err
}
