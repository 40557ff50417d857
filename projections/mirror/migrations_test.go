package mirror_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/migrations"
	"github.com/pdslog/pdslog/projections/mirror/d1"
)

// TestMigrationsAsWrangler: Apply creates the schema and records each
// file in d1_migrations as `wrangler d1 migrations apply` does (its table
// definition, one row per file name with applied_at); applying again does
// nothing.
func TestMigrationsAsWrangler(t *testing.T) {
	tg := newTarget(t)
	db := tg.client(t, nil)
	applied, err := migrations.Apply(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []string{"0001_init.sql", "0002_edge_reads.sql", "0003_record_takedowns.sql"}) {
		t.Fatalf("applied %v", applied)
	}
	got := rowsOf(t, db, "SELECT id, name FROM d1_migrations")
	if !slices.Equal(got, []string{"1 | 0001_init.sql", "2 | 0002_edge_reads.sql", "3 | 0003_record_takedowns.sql"}) {
		t.Fatalf("d1_migrations %q", got)
	}
	at := rowsOf(t, db, "SELECT applied_at FROM d1_migrations")
	if len(at) != 3 || !strings.HasPrefix(at[0], "20") {
		t.Fatalf("applied_at %q", at)
	}
	def := rowsOf(t, db, "SELECT sql FROM sqlite_master WHERE name = 'd1_migrations'")
	for _, want := range []string{"id         INTEGER PRIMARY KEY AUTOINCREMENT", "name       TEXT UNIQUE", "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL"} {
		if len(def) != 1 || !strings.Contains(def[0], want) {
			t.Fatalf("d1_migrations is %q, lacking wrangler's %q", def, want)
		}
	}
	tables := rowsOf(t, db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'")
	want := []string{"account_state", "blob", "blob_usage", "blockstore", "commit_log", "d1_migrations", "mirror_backfill", "mirror_state", "r2_trash", "record",
		"record_takedown", "repo_root", "signing_key", "sync_log"}
	if !slices.Equal(tables, want) {
		t.Fatalf("tables %q, want %q", tables, want)
	}
	if applied, err := migrations.Apply(t.Context(), db); err != nil || len(applied) != 0 {
		t.Fatalf("second Apply = %v, %v", applied, err)
	}
	if got := rowsOf(t, db, "SELECT id, name FROM d1_migrations"); len(got) != 3 {
		t.Fatalf("d1_migrations after a second Apply: %q", got)
	}
}

// TestMigrationUpgrade: a database on 0001 holding rows (as production
// databases mirrored before 0002 are) takes 0002 (and 0003) on the next
// Apply, and keeps its rows.
func TestMigrationUpgrade(t *testing.T) {
	db := onMigrations(t, 1)
	if _, err := db.Exec(t.Context(), "INSERT INTO account_state (did, handle, active, status, created_at, seq) VALUES ('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 'Alice.test', 1, NULL, 1, 7);"); err != nil {
		t.Fatal(err)
	}
	applied, err := migrations.Apply(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []string{"0002_edge_reads.sql", "0003_record_takedowns.sql"}) {
		t.Fatalf("applied %v, want 0002 and 0003", applied)
	}
	if got := rowsOf(t, db, "SELECT did, handle FROM account_state WHERE handle = 'alice.TEST' COLLATE NOCASE"); !slices.Equal(got, []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa | Alice.test"}) {
		t.Fatalf("account_state after the upgrade: %q", got)
	}
	idx := rowsOf(t, db, "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('account_state_handle_idx', 'commit_log_did_rev_idx', 'sync_log_did_idx', 'sync_log_did_rev_idx')")
	if len(idx) != 4 {
		t.Fatalf("indexes after the upgrade: %q", idx)
	}
}

// TestMigration0003OnExisting: a database on 0001 and 0002 that a mirror
// has written (rows, a cursor) takes 0003 alone on the next Apply, keeps
// its rows, gets an empty record_takedown, and a mirror_backfill row for
// that mirror up to its cursor: it passed takedowns it did not mirror.
func TestMigration0003OnExisting(t *testing.T) {
	db := onMigrations(t, 2)
	if _, err := db.Exec(t.Context(), `INSERT INTO account_state (did, handle, active, status, created_at, seq) VALUES ('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 'alice.test', 1, NULL, 1, 7);
INSERT INTO record (uri, did, cid, json, created_at, seq) VALUES ('at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/a', 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 'bafy', '{}', 1, 9);
INSERT INTO mirror_state (name, cursor, head, updated_at) VALUES ('cloudflare', 42, 50, '2026-12-01T00:00:00Z');`); err != nil {
		t.Fatal(err)
	}
	applied, err := migrations.Apply(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []string{"0003_record_takedowns.sql"}) {
		t.Fatalf("applied %v, want only 0003", applied)
	}
	if got := rowsOf(t, db, "SELECT uri, seq FROM record"); !slices.Equal(got, []string{"at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/a | 9"}) {
		t.Fatalf("record after the upgrade: %q", got)
	}
	if got := rowsOf(t, db, "SELECT name, cursor FROM mirror_state"); !slices.Equal(got, []string{"cloudflare | 42"}) {
		t.Fatalf("mirror_state after the upgrade: %q", got)
	}
	if got := rowsOf(t, db, "SELECT uri FROM record_takedown"); len(got) != 0 {
		t.Fatalf("record_takedown after the upgrade: %q", got)
	}
	if got := rowsOf(t, db, "SELECT name, upto, cursor FROM mirror_backfill"); !slices.Equal(got, []string{"cloudflare | 42 | 0"}) {
		t.Fatalf("mirror_backfill after the upgrade: %q, want the mirror's cursor to read again", got)
	}
}

// onMigrations returns a database on the first n migrations, recorded in
// d1_migrations as wrangler (and migrations.Apply) records them.
func onMigrations(t *testing.T, n int) *d1.Client {
	t.Helper()
	db := newTarget(t).client(t, nil)
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(t.Context(), `CREATE TABLE IF NOT EXISTS d1_migrations (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT UNIQUE,
	applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range all[:n] {
		if _, err := db.Exec(t.Context(), m.SQL+"\nINSERT INTO d1_migrations (name) values ('"+m.Name+"');\n"); err != nil {
			t.Fatal(err)
		}
	}
	return db
}
