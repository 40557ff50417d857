// Package repos is the projection of every hosted repo's head and hosting
// status: the latest commit (rev, commit CID, MST root, seq) from #commit and
// #sync events, active/status from #account events, and the handle from
// #identity events. It answers getLatestCommit, getRepoStatus and listRepos.
package repos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections"
)

// Name is the projection's name.
const Name = "repos"

// ErrNotFound is returned for a repo the projection does not know.
var ErrNotFound = errors.New("repos: not found")

// StatusDeleted is the account status whose event removes the repo.
const StatusDeleted = "deleted"

// Repo is one repo's projected state.
type Repo struct {
	DID    syntax.DID    `json:"did"`
	Rev    syntax.TID    `json:"rev,omitempty"`
	Commit string        `json:"commit,omitempty"` // CID string of the head commit
	Data   string        `json:"data,omitempty"`   // CID string of the MST root
	Seq    eventlog.Seq  `json:"seq,omitempty"`    // seq of the head commit or sync
	Active bool          `json:"active"`
	Status string        `json:"status,omitempty"`
	Handle syntax.Handle `json:"handle,omitempty"`
}

// Projection is the repos projection on a projections.Store.
type Projection struct{ *projections.KV }

// New returns the repos projection stored in s.
func New(s *projections.Store) *Projection {
	return &Projection{projections.NewBatchKV(s, Name, apply)}
}

var _ projections.Projection = (*Projection)(nil)

// apply folds a batch's events into the states of the repos they touch,
// read once and written once per batch (a repo's commits are most of the
// log: decoding and re-encoding its state for each was most of replay).
func apply(w *projections.Writer, evs []*eventlog.Event) error {
	states := map[syntax.DID]*Repo{} // nil: deleted in this batch
	var order []syntax.DID
	for _, ev := range evs {
		if ev.Kind == eventlog.KindTombstone || ev.Kind == eventlog.KindPrivate {
			continue
		}
		r, seen := states[ev.DID]
		if !seen {
			order = append(order, ev.DID)
			r = &Repo{DID: ev.DID, Active: true}
			if b, ok, err := w.Get([]byte(ev.DID)); err != nil {
				return err
			} else if ok {
				if err := json.Unmarshal(b, r); err != nil {
					return fmt.Errorf("apply seq %d: %w", ev.Seq, err)
				}
			}
		} else if r == nil {
			r = &Repo{DID: ev.DID, Active: true}
		}
		states[ev.DID] = fold(r, ev)
	}
	for _, did := range order {
		r := states[did]
		if r == nil {
			if err := w.Delete([]byte(did)); err != nil {
				return err
			}
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := w.Set([]byte(did), b); err != nil {
			return err
		}
	}
	return nil
}

// fold returns r after ev (nil when ev removes the repo).
func fold(r *Repo, ev *eventlog.Event) *Repo {
	switch ev.Kind {
	case eventlog.KindCommit:
		c := ev.Commit
		r.Rev, r.Commit, r.Data, r.Seq = c.Rev, c.Commit.String(), c.Data.String(), ev.Seq
	case eventlog.KindSync:
		s := ev.Sync
		r.Rev, r.Commit, r.Data, r.Seq = s.Rev, s.Commit.String(), s.Data.String(), ev.Seq
	case eventlog.KindIdentity:
		if ev.Identity.Handle != "" {
			r.Handle = ev.Identity.Handle
		}
	case eventlog.KindAccount:
		if ev.Account.Status == StatusDeleted {
			return nil
		}
		r.Active, r.Status = ev.Account.Active, ev.Account.Status
	}
	return r
}

// Get returns the repo's state, or ErrNotFound.
func (p *Projection) Get(ctx context.Context, did syntax.DID) (*Repo, error) {
	b, ok, err := p.Space.Get([]byte(did))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	var r Repo
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// List returns up to limit repos with DIDs after the given one, in DID order.
func (p *Projection) List(ctx context.Context, after syntax.DID, limit int) ([]*Repo, error) {
	var out []*Repo
	var start []byte
	if after != "" {
		start = append([]byte(after), 0)
	}
	err := p.Space.Scan(ctx, nil, start, false, func(_, v []byte) error {
		var r Repo
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		out = append(out, &r)
		if len(out) >= limit {
			return io.EOF
		}
		return nil
	})
	return out, err
}
