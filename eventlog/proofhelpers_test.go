package eventlog_test

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
)

// cmpEvents compares events like cmpCID does, but compares byte slices with
// bytes.Equal (nil equals empty) instead of element by element, which is
// far too slow for large blocks under the race detector.
var cmpEvents = cmp.Options{
	cmp.Comparer(func(a, b cid.Cid) bool { return a.Equals(b) }),
	cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) }),
	cmp.FilterValues(func(a, b []eventlog.Op) bool { return len(a) == 0 && len(b) == 0 },
		cmp.Comparer(func(a, b []eventlog.Op) bool { return true })),
}

// diffEvents fails with the first differing event (diffing whole slices of
// large events is slow).
func diffEvents(t *testing.T, what string, want, got []*eventlog.Event) {
	t.Helper()
	for i := range max(len(want), len(got)) {
		if i >= len(want) || i >= len(got) {
			t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
		}
		if diff := cmp.Diff(want[i], got[i], cmpEvents); diff != "" {
			t.Fatalf("%s: event %d (seq %d) differs (-want +got):\n%s", what, i, want[i].Seq, diff)
		}
	}
}
