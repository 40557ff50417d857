package mirror_test

import (
	"testing"

	"github.com/pdslog/pdslog/projections/mirror/d1/d1test"
)

// TestEmulatorRestart: D1 restarted on the same storage keeps the rows
// and the cursor; a mirror run after the restart does no work at all:
// three requests (the migrations table, the applied list, the cursor)
// and nothing written to D1 or R2.
func TestEmulatorRestart(t *testing.T) {
	persist := t.TempDir()
	id := d1test.NewID()
	e := d1test.StartT(t, d1test.Options{Databases: []string{id}, Persist: persist})
	w := newWorld(t, t.TempDir(), 5, 2)
	defer w.log.Close()
	localBlobs.Store(w.log, w.store)
	w.build(t, 60, false)
	w.flush()
	tg := &target{db: id, apiBase: e.APIBase, r2: startR2(t)}
	m := tg.mirror(t, tg.client(t, nil), w.store, nil)
	if err := catchUp(t.Context(), w.log, m, 1000); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := d1test.StartT(t, d1test.Options{Databases: []string{id}, Persist: persist})
	tg.apiBase = e2.APIBase
	puts, dels := tg.r2.count("PUT"), tg.r2.count("DELETE")
	db := tg.client(t, nil)
	m2 := tg.mirror(t, db, w.store, nil)
	if err := catchUp(t.Context(), w.log, m2, 1000); err != nil {
		t.Fatal(err)
	}
	if st := m2.Stats(); st.Events != 0 || st.Requests != 0 || st.Uploads != 0 || st.Deleted != 0 {
		t.Fatalf("work after the restart: %+v", st)
	}
	if n := db.Requests(); n != 3 {
		t.Fatalf("%d D1 requests after the restart, want 3", n)
	}
	if tg.r2.count("PUT") != puts || tg.r2.count("DELETE") != dels {
		t.Fatal("R2 written after the restart")
	}
	checkMirror(t, w.log, db, tg.r2, testInline)
}
