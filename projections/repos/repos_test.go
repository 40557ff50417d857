package repos_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"

	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/projectiontest"
	"github.com/pdslog/pdslog/projections/repos"
)

func TestConformance(t *testing.T) {
	projectiontest.Run(t, func(s *projections.Store) projections.Projection { return repos.New(s) }, nil)
}

// TestBatchFoldsLikeEvents applies a batch in which repos are deleted and
// come back, in one Apply and one event at a time: the states agree.
func TestBatchFoldsLikeEvents(t *testing.T) {
	ctx := context.Background()
	s := eventlogtest.NewStream(4, 3)
	var evs []*eventlog.Event
	for i := range 300 {
		ev := s.Next()
		if i%40 == 39 {
			ev = &eventlog.Event{Kind: eventlog.KindAccount, DID: ev.DID, Account: &eventlog.Account{Status: repos.StatusDeleted}}
		}
		ev.Seq = eventlog.Seq(len(evs) + 1)
		evs = append(evs, ev)
	}
	one, all := projectiontest.OpenStore(t), projectiontest.OpenStore(t)
	p1, pAll := repos.New(one), repos.New(all)
	for _, ev := range evs {
		if err := p1.Apply(ctx, []*eventlog.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pAll.Apply(ctx, evs); err != nil {
		t.Fatal(err)
	}
	want, got := projectiontest.Digest(t, one, p1), projectiontest.Digest(t, all, pAll)
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Fatalf("one batch:\n%s\none event at a time:\n%s", got, want)
	}
}
