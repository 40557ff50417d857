package mirror_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/mirror"
	"github.com/pdslog/pdslog/projections/mirror/d1"
	"github.com/pdslog/pdslog/projections/mirror/d1/d1test"
)

// emu is the D1 emulator the tests of this binary share; each test takes
// its own database from it.
var emu *d1test.Emulator

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(mirrorChild(cfg))
	}
	code := func() int {
		flag.Parse()
		if testing.Short() {
			return m.Run() // the tests that need the emulator skip (emu.Database)
		}
		var err error
		emu, err = d1test.Start(d1test.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer emu.Close()
		return m.Run()
	}()
	os.Exit(code)
}

// target is a D1 database and an R2 bucket to mirror into.
type target struct {
	db      string
	apiBase string
	r2      *r2
}

func newTarget(t testing.TB) *target {
	return &target{db: emu.Database(t), apiBase: emu.APIBase, r2: startR2(t)}
}

func (tg *target) client(t testing.TB, mod func(*d1.Options)) *d1.Client {
	t.Helper()
	o := d1.Options{APIBase: tg.apiBase, AccountID: emu.Account, DatabaseID: tg.db, Token: emu.Token, Budget: -1,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Logger: quiet}
	if mod != nil {
		mod(&o)
	}
	c, err := d1.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (tg *target) mirror(t testing.TB, db *d1.Client, localStore blobstore.Store, mod func(*mirror.Options)) *mirror.Mirror {
	t.Helper()
	blobsR2, blocksR2 := tg.r2.stores(t)
	o := mirror.Options{D1: db, Blobs: blobsR2, Blocks: blocksR2, Local: localStore, InlineLimit: testInline, Logger: quiet}
	if mod != nil {
		mod(&o)
	}
	m, err := mirror.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testInline keeps blocks over 1.5 KB out of D1 rows, so the tests reach
// the R2 path for large values (in production it is 1 MB).
const testInline = 2000

// catchUp runs m through the log's head with its own runner.
func catchUp(ctx context.Context, l *eventlog.Log, m *mirror.Mirror, batch int) error {
	r := projections.NewRunner(l, []projections.Projection{m}, &projections.RunnerOptions{BatchSize: batch, Logger: quiet})
	return r.CatchUp(ctx, l.Head())
}

// TestMirrorEqualsProjections mirrors a log of several accounts (creates,
// updates, deletes, blobs, takedowns, handle changes, a deleted account)
// in small requests, then checks every D1 table against the local
// projections row for row and R2 against the rows; a second run over the
// same database does nothing at all.
func TestMirrorEqualsProjections(t *testing.T) {
	w := newWorld(t, t.TempDir(), 1, 5)
	defer w.log.Close()
	localBlobs.Store(w.log, w.store)
	tg := newTarget(t)
	db := tg.client(t, nil)
	m := tg.mirror(t, db, w.store, func(o *mirror.Options) { o.MaxStatements = 24 })
	// The mirror follows the log as it grows, as it does beside serve:
	// blobs it copied are collected later.
	for phase := range 5 {
		w.build(t, 60, phase == 2)
		if phase == 4 {
			w.flush()
		}
		if err := catchUp(t.Context(), w.log, m, 100); err != nil {
			t.Fatal(err)
		}
	}
	st := m.Stats()
	t.Logf("%d events, %d D1 requests (%d in all), %d R2 uploads, %d skipped, %d R2 deletions",
		st.Events, st.Requests, db.Requests(), st.Uploads, st.Skipped, st.Deleted)
	if st.Skipped == 0 || st.Deleted == 0 || st.Uploads == 0 {
		t.Errorf("the world reached neither a skipped blob, an R2 deletion or an upload: %+v", st)
	}
	checkMirror(t, w.log, db, tg.r2, testInline)

	// Again, from the cursor in D1: nothing to do.
	puts := tg.r2.count("PUT")
	db2 := tg.client(t, nil)
	m2 := tg.mirror(t, db2, w.store, nil)
	if err := catchUp(t.Context(), w.log, m2, 100); err != nil {
		t.Fatal(err)
	}
	if st := m2.Stats(); st.Requests != 0 || st.Uploads != 0 || st.Events != 0 {
		t.Fatalf("second run did work: %+v", st)
	}
	if n := db2.Requests(); n != 3 {
		t.Fatalf("second run sent %d D1 requests, want 3 (migrations table, applied list, cursor)", n)
	}
	if tg.r2.count("PUT") != puts {
		t.Fatal("second run uploaded to R2")
	}
}

// TestBadToken: a token Cloudflare refuses is a clear error naming the
// setting, and the token itself appears nowhere in it.
func TestBadToken(t *testing.T) {
	w := newWorld(t, t.TempDir(), 2, 1)
	defer w.log.Close()
	tg := newTarget(t)
	const token = "not-the-token-5ecret"
	db := tg.client(t, func(o *d1.Options) { o.Token = token })
	m := tg.mirror(t, db, w.store, nil)
	err := catchUp(t.Context(), w.log, m, 100)
	if !errors.Is(err, d1.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if d1.Temporary(err) {
		t.Error("an auth failure is reported as temporary")
	}
	msg := err.Error()
	for _, want := range []string{"authentication failed", "CLOUDFLARE_API_TOKEN", "HTTP 403", "10000"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, token) {
		t.Errorf("error %q holds the token", msg)
	}
	if n := db.Retries(); n != 0 {
		t.Errorf("%d retries: an auth failure is not retried", n)
	}
}
