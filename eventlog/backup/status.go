package backup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/backup/objstore"
)

func syntaxDID(s string) syntax.DID { return syntax.DID(s) }

// Status is what a backup holds, as its objects say.
type Status struct {
	URL         string
	Generations []*Manifest
	Manifest    *Manifest // of the generation reported on
	// Head is the last seq of the generation's segments (every seq up to
	// it); Segments and Bytes count them; LastUpload is the newest one's
	// time.
	Head       eventlog.Seq
	Segments   int
	Bytes      int64
	LastUpload time.Time
	Stale      int // segments that resume or compaction will delete
}

// ReadStatus reads the state of generation gen ("": the latest) at t.
func ReadStatus(ctx context.Context, t *Target, gen string) (*Status, error) {
	ms, err := Generations(ctx, t)
	if err != nil {
		return nil, err
	}
	st := &Status{URL: t.URL, Generations: ms}
	if gen == "" {
		m, err := LatestGeneration(ctx, t)
		if err != nil {
			return st, err
		}
		st.Manifest = m
	} else {
		m, err := readManifest(ctx, t.Objects, gen)
		if errors.Is(err, objstore.ErrNotExist) {
			return st, fmt.Errorf("%w: no generation %s at %s", ErrNoBackup, gen, t.URL)
		}
		if err != nil {
			return st, err
		}
		st.Manifest = m
	}
	c := newChain(func(r segRef) error {
		st.Segments++
		st.Bytes += r.Size
		if r.Modified.After(st.LastUpload) {
			st.LastUpload = r.Modified
		}
		return nil
	})
	if err := listSegments(ctx, t.Objects, st.Manifest.Generation, c.add); err != nil {
		return st, err
	}
	if err := c.done(); err != nil {
		return st, err
	}
	st.Head, st.Stale = c.head(), len(c.stale)
	if st.Manifest.LastUpload.After(st.LastUpload) {
		st.LastUpload = st.Manifest.LastUpload
	}
	return st, nil
}
