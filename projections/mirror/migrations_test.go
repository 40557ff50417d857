package mirror_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/migrations"
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
	if !slices.Equal(applied, []string{"0001_init.sql"}) {
		t.Fatalf("applied %v", applied)
	}
	got := rowsOf(t, db, "SELECT id, name FROM d1_migrations")
	if !slices.Equal(got, []string{"1 | 0001_init.sql"}) {
		t.Fatalf("d1_migrations %q", got)
	}
	at := rowsOf(t, db, "SELECT applied_at FROM d1_migrations")
	if len(at) != 1 || !strings.HasPrefix(at[0], "20") {
		t.Fatalf("applied_at %q", at)
	}
	def := rowsOf(t, db, "SELECT sql FROM sqlite_master WHERE name = 'd1_migrations'")
	for _, want := range []string{"id         INTEGER PRIMARY KEY AUTOINCREMENT", "name       TEXT UNIQUE", "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL"} {
		if len(def) != 1 || !strings.Contains(def[0], want) {
			t.Fatalf("d1_migrations is %q, lacking wrangler's %q", def, want)
		}
	}
	tables := rowsOf(t, db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'")
	want := []string{"account_state", "blob", "blob_usage", "blockstore", "commit_log", "d1_migrations", "mirror_state", "r2_trash", "record", "repo_root"}
	if !slices.Equal(tables, want) {
		t.Fatalf("tables %q, want %q", tables, want)
	}
	if applied, err := migrations.Apply(t.Context(), db); err != nil || len(applied) != 0 {
		t.Fatalf("second Apply = %v, %v", applied, err)
	}
	if got := rowsOf(t, db, "SELECT id, name FROM d1_migrations"); len(got) != 1 {
		t.Fatalf("d1_migrations after a second Apply: %q", got)
	}
}
