package d1test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdslog/pdslog/projections/testenv"
	"github.com/pdslog/pdslog/projections/testenv/npm"
)

// Timeouts: generous, for a loaded 2-core CI machine.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
)

// DefaultPoolSize is how many databases an emulator serves when Options
// names none.
const DefaultPoolSize = 64

// Options configure an emulator.
type Options struct {
	// Databases are the database ids it serves; nil means DefaultPoolSize
	// random UUIDs.
	Databases []string
	// Persist is the directory keeping the databases; "" keeps them in
	// memory, gone when the emulator stops.
	Persist string
	// Token is the API token requests must carry; "" means "test-token".
	Token string
	// Account is the account id requests must name; "" means a fixed
	// 32-hex-digit id.
	Account string
}

// Emulator is a running D1 emulator.
type Emulator struct {
	// APIBase is the API's base URL, as CLOUDFLARE_API_BASE_URL takes it:
	// http://127.0.0.1:PORT/client/v4.
	APIBase string
	Token   string
	Account string

	mu   sync.Mutex
	pool []string // databases not handed out yet

	proc *npm.Process
}

// Start starts an emulator. The caller closes it; it also stops when this
// process exits, however it exits (it watches its stdin).
func Start(opts Options) (*Emulator, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	if err := npm.Install(dir); err != nil {
		return nil, fmt.Errorf("d1test: %w", err)
	}
	node, err := npm.Tool("PDSLOG_NODE", "node")
	if err != nil {
		return nil, fmt.Errorf("d1test: the D1 emulator runs the npm package miniflare under Node.js: %w", err)
	}
	if opts.Databases == nil {
		for range DefaultPoolSize {
			opts.Databases = append(opts.Databases, NewID())
		}
	}
	if opts.Token == "" {
		opts.Token = "test-token"
	}
	if opts.Account == "" {
		opts.Account = "0123456789abcdef0123456789abcdef"
	}
	proc, origin, err := npm.StartProcess(npm.ProcessSpec{Node: node, Dir: dir, Script: "server.mjs",
		Env: []string{
			"D1EMU_PORT=0",
			"D1EMU_DATABASES=" + strings.Join(opts.Databases, ","),
			"D1EMU_PERSIST=" + opts.Persist,
			"D1EMU_TOKEN=" + opts.Token,
			"D1EMU_ACCOUNT=" + opts.Account,
		},
		Ready: readyLine, ReadyTimeout: readyTimeout, StopTimeout: stopTimeout})
	if err != nil {
		return nil, fmt.Errorf("d1test: %w", err)
	}
	return &Emulator{APIBase: origin + "/client/v4", Token: opts.Token, Account: opts.Account,
		pool: append([]string(nil), opts.Databases...), proc: proc}, nil
}

// StartT starts an emulator for t and stops it at t's cleanup.
func StartT(t testing.TB, opts Options) *Emulator {
	t.Helper()
	testenv.Slow(t, "runs the D1 emulator under Node.js")
	e, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		if t.Failed() {
			t.Logf("d1 emulator output:\n%s", e.Output())
		}
	})
	return e
}

// Database returns a database id nobody has used yet, failing t when the
// pool is exhausted.
//
// A nil emulator (a TestMain that did not start one under -short) skips t
// as testenv.Slow does.
func (e *Emulator) Database(t testing.TB) string {
	t.Helper()
	if e == nil {
		testenv.Slow(t, "uses the D1 emulator under Node.js")
		t.Fatal("d1test: no emulator")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.pool) == 0 {
		t.Fatal("d1test: every database of the emulator's pool is in use (raise Options.Databases)")
	}
	id := e.pool[0]
	e.pool = e.pool[1:]
	return id
}

// Output is what the emulator printed.
func (e *Emulator) Output() string { return e.proc.Output() }

// Close stops the emulator: it closes its stdin (the server disposes of
// Miniflare and exits), and kills it if it has not exited in time.
func (e *Emulator) Close() error { return e.proc.Stop() }

// Query sends one SQL statement to database db and returns the raw
// response body (test helper, bypassing the client under test).
func (e *Emulator) Query(ctx context.Context, db, sql string) ([]byte, error) {
	body := fmt.Sprintf(`{"sql":%q}`, sql)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		e.APIBase+"/accounts/"+e.Account+"/d1/database/"+db+"/query", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("d1test: %s: %s", resp.Status, b)
	}
	return b, nil
}

// NewID returns a random database id shaped like D1's (a UUID).
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Dir is the directory holding server.mjs, worker.mjs, package.json and
// node_modules: $PDSLOG_D1EMU_DIR, or this source file's directory.
func Dir() (string, error) {
	dir, err := npm.PackageDir("PDSLOG_D1EMU_DIR", "server.mjs")
	if err != nil {
		return "", fmt.Errorf("d1test: %w", err)
	}
	return dir, nil
}

var readyLine = regexp.MustCompile(`^D1EMU_LISTENING (http://127\.0\.0\.1:[0-9]{1,5})$`)
