package records_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/projectiontest"
	"github.com/pdslog/pdslog/projections/records"
)

// BenchmarkServed: getRecord's read of the projection (the takedown
// check, then the record), over 8 repos of which none has a takedown.
func BenchmarkServed(b *testing.B) {
	ctx := context.Background()
	st := committest.NewStream(5, 8)
	p := records.New(projectiontest.OpenStore(b))
	var evs []*eventlog.Event
	for i := range 2000 {
		ev := st.Next()
		ev.Seq = eventlog.Seq(i + 1)
		evs = append(evs, ev)
	}
	if err := p.Apply(ctx, evs); err != nil {
		b.Fatal(err)
	}
	type path struct {
		did  syntax.DID
		coll syntax.NSID
		rkey syntax.RecordKey
	}
	var paths []path
	for _, r := range st.Repos {
		for k := range r.Records {
			coll, rkey, _ := strings.Cut(k, "/")
			paths = append(paths, path{r.DID, syntax.NSID(coll), syntax.RecordKey(rkey)})
		}
	}
	if len(paths) == 0 {
		b.Fatal("the stream left no records")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := paths[i%len(paths)]
		i++
		if _, err := p.Served(ctx, q.did, q.coll, q.rkey); err != nil {
			b.Fatal(err)
		}
	}
}
