package mirror_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/migrations"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/mirror"
	"github.com/pdslog/pdslog/projections/mirror/d1"
)

// TestRecordTakedowns follows one record through takedowns as pdslog's
// admin API writes them: after each event the mirror's record_takedown
// equals the records projection's takedowns, and holds what the step
// says: a takedown applies, its reversal clears it, an update keeps it, a
// deletion ends it (the record made again at the path is served), a
// takedown of a record the repo does not hold changes nothing, and a
// deleted account's go with it.
func TestRecordTakedowns(t *testing.T) {
	w := newWorld(t, t.TempDir(), 3, 2)
	defer w.log.Close()
	tg := newTarget(t)
	db := tg.client(t, nil)
	m := tg.mirror(t, db, w.store, nil)
	r := w.live[0]
	uri := func(path string) string { return "at://" + string(r.DID) + "/" + path }
	write := func(action, rkey, text string) *eventlog.Event {
		wr := commit.Write{Action: action, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(rkey)}
		if action != eventlog.ActionDelete {
			wr.Record = post(text)
		}
		return w.st.Commit(r, []commit.Write{wr})
	}
	down := func(rkey string, applied bool) *eventlog.Event {
		return events.Must(r.DID, &events.RecordTakedown{Collection: "app.bsky.feed.post", RKey: rkey, Applied: applied, Ref: "mod-7"})
	}
	steps := []struct {
		name string
		evs  []*eventlog.Event
		want []string // record_takedown URIs
	}{
		{"created", []*eventlog.Event{write(eventlog.ActionCreate, "a", "one"), write(eventlog.ActionCreate, "b", "two")}, nil},
		{"taken down", []*eventlog.Event{down("a", true)}, []string{uri("app.bsky.feed.post/a")}},
		{"reversed", []*eventlog.Event{down("a", false)}, nil},
		{"taken down again, updated", []*eventlog.Event{down("a", true), write(eventlog.ActionUpdate, "a", "one, edited")}, []string{uri("app.bsky.feed.post/a")}},
		{"a record not in the repo", []*eventlog.Event{down("zzz", true)}, []string{uri("app.bsky.feed.post/a")}},
		{"deleted", []*eventlog.Event{write(eventlog.ActionDelete, "a", "")}, nil},
		{"made again", []*eventlog.Event{write(eventlog.ActionCreate, "a", "one, again")}, nil},
		// In one request: the takedown comes before the deletion and the
		// creation; then a takedown of b stays.
		{"down, deleted, made again, b down", []*eventlog.Event{down("a", true), write(eventlog.ActionDelete, "a", ""),
			write(eventlog.ActionCreate, "a", "one, third"), down("b", true)}, []string{uri("app.bsky.feed.post/b")}},
	}
	for _, s := range steps {
		w.append(t, s.evs...)
		if err := catchUp(t.Context(), w.log, m, 100); err != nil {
			t.Fatal(err)
		}
		got := rowsOf(t, db, "SELECT uri FROM record_takedown")
		if !slices.Equal(got, s.want) {
			t.Fatalf("%s: record_takedown %q, want %q", s.name, got, s.want)
		}
		diff(t, "record_takedown after "+s.name, rowsOf(t, db, "SELECT uri, did FROM record_takedown"), takedownsOf(t, project(t, w.log).records))
	}
	w.deleteAccount(t, r)
	if err := catchUp(t.Context(), w.log, m, 100); err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, db, "SELECT uri FROM record_takedown"); len(got) != 0 {
		t.Fatalf("a deleted account's takedowns are left: %q", got)
	}
	checkMirror(t, w.log, db, tg.r2, testInline)
}

// takeOneDown takes the first record of the first live account holding
// one down, so that a world (random, and partly in map order) surely has
// a takedown in force.
func (w *world) takeOneDown(t testing.TB) {
	t.Helper()
	for _, r := range w.live {
		if paths := slices.Sorted(maps.Keys(r.Records)); len(paths) > 0 {
			coll, rkey, _ := strings.Cut(paths[0], "/")
			w.append(t, events.Must(r.DID, &events.RecordTakedown{Collection: coll, RKey: rkey, Applied: true}))
			return
		}
	}
	t.Fatal("no account holds a record")
}

// snapshot is every mirrored table, every column, row for row.
func snapshot(t testing.TB, db *d1.Client) []string {
	t.Helper()
	var out []string
	for _, table := range []string{"account_state", "repo_root", "commit_log", "blockstore", "record", "record_takedown", "blob", "blob_usage",
		"signing_key", "sync_log", "mirror_state", "mirror_backfill", "r2_trash"} {
		res, err := db.Batch(context.Background(), []d1.Statement{{SQL: "SELECT * FROM " + table}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res[0].Rows {
			cols := make([]string, 0, len(r))
			for c, v := range r {
				cols = append(cols, fmt.Sprintf("%s=%v", c, v))
			}
			sort.Strings(cols)
			out = append(out, table+": "+strings.Join(cols, " "))
		}
	}
	sort.Strings(out)
	return out
}

// TestReplayChangesNothing: the rows of the whole log sent again, in
// order, over a mirror that applied it (in small requests, as it grew)
// leave every table as it was, row for row and seq for seq: replay
// equals the incremental mirror.
func TestReplayChangesNothing(t *testing.T) {
	w := newWorld(t, t.TempDir(), 4, 4)
	defer w.log.Close()
	localBlobs.Store(w.log, w.store)
	tg := newTarget(t)
	db := tg.client(t, nil)
	m := tg.mirror(t, db, w.store, func(o *mirror.Options) { o.MaxStatements = 16 })
	for phase := range 3 {
		w.build(t, 150, phase == 1)
		if phase == 2 {
			w.flush()
			w.takeOneDown(t)
		}
		if err := catchUp(t.Context(), w.log, m, 30); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, db)
	if !slices.ContainsFunc(before, func(s string) bool { return strings.HasPrefix(s, "record_takedown: ") }) {
		t.Fatal("no record taken down: the test does not reach record_takedown")
	}
	if err := mirror.ReplayRows(t.Context(), db, w.log, testInline); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, db)
	diff(t, "the mirror replayed", after, before)
	checkMirror(t, w.log, db, tg.r2, testInline)
}

// failAfter is a transport that fails every D1 request after the first n
// (the request not sent), as a mirror killed there would stop.
type failAfter struct {
	n    atomic.Int64
	base http.RoundTripper
}

var errStopped = errors.New("stopped here by the test")

func (f *failAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.n.Add(-1) < 0 {
		return nil, errStopped
	}
	return f.base.RoundTrip(r)
}

// TestTakedownBackfill: a database mirrored before migration 0003 (every
// row but record_takedown, which did not exist) takes 0003 and gets its
// mirror_backfill row; the mirror then reads the log again for the
// takedowns alone, stopped part way and started again, goes on from its
// own cursor through what was appended meanwhile, and ends equal to the
// local projections with the row gone.
func TestTakedownBackfill(t *testing.T) {
	w := newWorld(t, t.TempDir(), 5, 4)
	defer w.log.Close()
	localBlobs.Store(w.log, w.store)
	tg := newTarget(t)
	db := tg.client(t, nil)
	m := tg.mirror(t, db, w.store, nil)
	w.build(t, 150, true)
	w.takeOneDown(t)
	if err := catchUp(t.Context(), w.log, m, 100); err != nil {
		t.Fatal(err)
	}
	if len(rowsOf(t, db, "SELECT uri FROM record_takedown")) == 0 {
		t.Fatal("no record taken down: the test does not reach the backfill")
	}
	// As a database mirrored by a pdslog without record takedowns is after
	// 0003: its insert of mirror_backfill, from the file itself.
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	fill := all[len(all)-1]
	_, after, _ := strings.Cut(fill.SQL, "CREATE TABLE IF NOT EXISTS mirror_backfill")
	_, insert, ok := strings.Cut(after, ");\n")
	if fill.Name != "0003_record_takedowns.sql" || !ok || !strings.Contains(insert, "INSERT INTO mirror_backfill") {
		t.Fatalf("%s: no INSERT INTO mirror_backfill after the table", fill.Name)
	}
	if _, err := db.Exec(t.Context(), "DELETE FROM record_takedown;\n"+insert); err != nil {
		t.Fatal(err)
	}
	head := rowsOf(t, db, "SELECT cursor FROM mirror_state")
	if got := rowsOf(t, db, "SELECT upto, cursor FROM mirror_backfill"); !slices.Equal(got, []string{head[0] + " | 0"}) {
		t.Fatalf("mirror_backfill %q, want upto the cursor %s", got, head)
	}
	w.build(t, 40, false)
	w.flush()

	// Stopped after a few requests, in small batches.
	stop := &failAfter{base: http.DefaultTransport}
	stop.n.Store(6)
	db2 := tg.client(t, func(o *d1.Options) { o.HTTPClient = &http.Client{Transport: stop}; o.MaxAttempts = 1 })
	m2 := tg.mirror(t, db2, w.store, func(o *mirror.Options) { o.MaxStatements = 8 })
	r := projections.NewRunner(w.log, []projections.Projection{m2}, &projections.RunnerOptions{BatchSize: 20, Logger: quiet})
	if err := r.CatchUp(t.Context(), w.log.Head()); !errors.Is(err, errStopped) {
		t.Fatalf("stopped mirror: %v", err)
	}
	got := rowsOf(t, db, "SELECT upto, cursor FROM mirror_backfill")
	if len(got) != 1 || strings.HasSuffix(got[0], " | 0") {
		t.Fatalf("mirror_backfill after the stop %q: the backfill did not get part way", got)
	}
	if c := rowsOf(t, db, "SELECT cursor FROM mirror_state"); !slices.Equal(c, head) {
		t.Fatalf("the cursor moved to %q during the backfill", c)
	}

	m3 := tg.mirror(t, db, w.store, nil)
	if err := catchUp(t.Context(), w.log, m3, 20); err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, db, "SELECT name, upto, cursor FROM mirror_backfill"); len(got) != 0 {
		t.Fatalf("mirror_backfill left: %q", got)
	}
	checkMirror(t, w.log, db, tg.r2, testInline)
}
