// Package migrations holds the schema of pdslog's mirror in Cloudflare D1
// as numbered SQL files in wrangler's format (NNNN_name.sql), embedded in
// the binary. Files are forward-only and never edited once released: a
// change is a new file. Apply records each applied file in d1_migrations
// exactly as `wrangler d1 migrations apply` does (same table, same name
// column, same single request of the file's SQL followed by the INSERT),
// so an operator may apply them with either tool.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

//go:embed *.sql
var files embed.FS

// Table is the table applied migrations are recorded in (wrangler's
// default migrations_table).
const Table = "d1_migrations"

// createTable is wrangler's own definition of Table.
const createTable = `CREATE TABLE IF NOT EXISTS ` + Table + ` (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT UNIQUE,
	applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
)`

// Migration is one SQL file.
type Migration struct {
	Name   string // file name, e.g. "0001_init.sql"
	Number int    // its numeric prefix
	SQL    string
}

// All returns the migrations in the order they apply (by number).
func All() ([]Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, name := range names {
		prefix, _, ok := strings.Cut(name, "_")
		n, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("migrations: %s: name is not NNNN_name.sql", name)
		}
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Name: name, Number: n, SQL: string(b)})
	}
	slices.SortStableFunc(out, func(a, b Migration) int { return a.Number - b.Number })
	for i := 1; i < len(out); i++ {
		if out[i].Number == out[i-1].Number {
			return nil, fmt.Errorf("migrations: %s and %s have the same number", out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// Executor runs SQL on the database: one request, whose statements
// (separated by semicolons) D1 runs as one batch, returning the rows of
// a query's result as column -> value maps.
type Executor interface {
	Exec(ctx context.Context, sql string) ([]map[string]any, error)
}

// Apply applies every migration not yet recorded in Table, in order, and
// returns the names it applied. Like wrangler it first creates Table,
// reads the names recorded there, then sends each pending file's SQL
// followed by `INSERT INTO d1_migrations (name) values ('NAME');` as one
// request, so a file and its record commit together.
func Apply(ctx context.Context, db Executor) ([]string, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(ctx, createTable); err != nil {
		return nil, fmt.Errorf("migrations: create %s: %w", Table, err)
	}
	rows, err := db.Exec(ctx, "SELECT name FROM "+Table+" ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("migrations: list applied: %w", err)
	}
	applied := map[string]bool{}
	for _, r := range rows {
		if name, ok := r["name"].(string); ok {
			applied[name] = true
		}
	}
	var done []string
	for _, m := range all {
		if applied[m.Name] {
			continue
		}
		sql := m.SQL + "\nINSERT INTO " + Table + " (name) values ('" + m.Name + "');\n"
		if _, err := db.Exec(ctx, sql); err != nil {
			return done, fmt.Errorf("migrations: apply %s: %w", m.Name, err)
		}
		done = append(done, m.Name)
	}
	return done, nil
}
