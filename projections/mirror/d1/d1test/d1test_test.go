package d1test_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/projections/mirror/d1/d1test"
)

// TestEmulator: the emulator answers D1's REST API with Cloudflare's
// envelope, runs a body's statements as one atomic batch, and refuses a
// wrong token and an unknown database.
func TestEmulator(t *testing.T) {
	e := d1test.StartT(t, d1test.Options{})
	db := e.Database(t)
	ctx := context.Background()
	if _, err := e.Query(ctx, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT); INSERT INTO t VALUES (1, 'x;y')"); err != nil {
		t.Fatal(err)
	}
	// The second statement fails: the first one's row must not stay.
	if b, err := e.Query(ctx, db, "INSERT INTO t VALUES (2, 'z'); SELECT * FROM nope"); err == nil || !strings.Contains(string(b), `"code":7500`) || !strings.Contains(string(b), "no such table: nope") {
		t.Fatalf("failing batch: %s, %v", b, err)
	}
	b, err := e.Query(ctx, db, "SELECT a, b FROM t -- a comment; with a semicolon")
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Result []struct {
			Results []map[string]any `json:"results"`
			Success bool             `json:"success"`
		} `json:"result"`
		Success bool `json:"success"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if !env.Success || len(env.Result) != 1 || len(env.Result[0].Results) != 1 || env.Result[0].Results[0]["b"] != "x;y" {
		t.Fatalf("select: %s", b)
	}
	token := e.Token
	e.Token = "wrong"
	b, err = e.Query(ctx, db, "SELECT 1")
	e.Token = token
	if err == nil || !strings.Contains(string(b), `"code":10000`) {
		t.Fatalf("wrong token: %s, %v", b, err)
	}
	if b, err := e.Query(ctx, "no-such-db", "SELECT 1"); err == nil || !strings.Contains(string(b), `"code":7404`) {
		t.Fatalf("unknown database: %s, %v", b, err)
	}
}
