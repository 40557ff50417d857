package mirror_test

import (
	"context"
	"testing"
	"time"

	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/mirror"
)

// TestFollow: run by a Runner's Run, as inside serve, the mirror keeps up
// with a log that grows while it runs, and records the log's head beside
// its cursor for `pdslog mirror status`.
func TestFollow(t *testing.T) {
	w := newWorld(t, t.TempDir(), 6, 3)
	defer w.log.Close()
	localBlobs.Store(w.log, w.store)
	tg := newTarget(t)
	db := tg.client(t, nil)
	m := tg.mirror(t, db, w.store, func(o *mirror.Options) { o.Head = w.log.Head })
	r := projections.NewRunner(w.log, []projections.Projection{m}, &projections.RunnerOptions{Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for range 4 {
		w.build(t, 40, false)
	}
	w.flush()
	head := w.log.Head()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := mirror.ReadState(t.Context(), db, "")
		if err != nil {
			t.Fatal(err)
		}
		// Caught up, and the R2 deletions that follow a batch are done.
		if st.Cursor == head && len(rowsOf(t, db, "SELECT key FROM r2_trash")) == 0 {
			if st.Head != head {
				t.Fatalf("state %+v: head %d, want %d", st, st.Head, head)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mirror at %d, log at %d after 60s", st.Cursor, head)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	checkMirror(t, w.log, db, tg.r2, testInline)
}
