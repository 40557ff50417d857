package server_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
)

// addAppPasswords appends n app passwords to did's account the way
// createAppPassword records them (salt derived from the DID, 64-byte
// scrypt key), with random keys: no password opens them, and no scrypt is
// spent making them.
func addAppPasswords(t *testing.T, env *apitest.Env, did syntax.DID, n int) {
	t.Helper()
	sum := sha256.Sum256([]byte(did))
	salt := hex.EncodeToString(sum[:16])
	evs := make([]*eventlog.Event, 0, n)
	for i := range n {
		var key [64]byte
		_, _ = rand.Read(key[:])
		evs = append(evs, events.Must(did, &events.AppPasswordCreated{Name: fmt.Sprintf("bulk-%d", i),
			Hash: salt + ":" + hex.EncodeToString(key[:]), CreatedAt: time.Now().UTC().Format(time.RFC3339Nano)}))
	}
	seq, err := env.Log.Append(context.Background(), evs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Runner.CatchUp(context.Background(), seq); err != nil {
		t.Fatal(err)
	}
}

// TestLoginCostFlat: a wrong password in the app-password format costs the
// same whether the account has one app password or 200: the attempt is
// hashed once (the reference's DID-derived salt makes every stored hash
// comparable with it), not once per app password. The right app password
// still logs in among 200.
func TestLoginCostFlat(t *testing.T) {
	env := apitest.New(t)
	one, many := env.CreateAccount(), env.CreateAccount()
	r := env.Do("POST", "/xrpc/com.atproto.server.createAppPassword", nil, many.Token, map[string]any{"name": "real"})
	var ap struct{ Password string }
	r.JSON(t, &ap)
	if r.Status != 200 {
		t.Fatalf("createAppPassword: %d %s", r.Status, r.Body)
	}
	// 200: more than createAppPassword allows now, as an account from
	// before the limit may have.
	addAppPasswords(t, env, one.DID, 1)
	addAppPasswords(t, env, many.DID, 200)
	const wrong = "abcd-efgh-ijkl-mnop"
	cost := func(a *apitest.Account) time.Duration {
		var runs []time.Duration
		for range 3 {
			start := time.Now()
			if _, err := env.PDS.CheckPassword(t.Context(), a.DID.String(), wrong); err == nil {
				t.Fatal("a wrong password was accepted")
			}
			runs = append(runs, time.Since(start))
		}
		return slices.Min(runs)
	}
	c1, c200 := cost(one), cost(many)
	t.Logf("wrong app password: %v with 1 app password, %v with 200", c1, c200)
	if c200 > 4*c1 {
		t.Fatalf("a wrong login costs %v with 200 app passwords, %v with 1: it grows with their number", c200, c1)
	}

	l, err := env.PDS.CheckPassword(t.Context(), many.Handle.String(), ap.Password)
	if err != nil || l.AppPassword != "real" {
		t.Fatalf("the right app password among 201: %+v %v", l, err)
	}
}

// TestAppPasswordCap: an account has at most 100 app passwords (the
// reference has no limit; pdslog's bounds what an account can store and
// what a login compares); revoking one makes room.
func TestAppPasswordCap(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	addAppPasswords(t, env, a.DID, 99)
	create := func(name string) *apitest.Response {
		return env.Do("POST", "/xrpc/com.atproto.server.createAppPassword", nil, a.Token, map[string]any{"name": name})
	}
	if r := create("hundredth"); r.Status != 200 {
		t.Fatalf("the 100th app password: %d %s", r.Status, r.Body)
	}
	head := env.Log.Head()
	if r := create("one-too-many"); r.Status != 400 || r.ErrorName() != "InvalidRequest" || !strings.Contains(r.Message(), "100") {
		t.Fatalf("the 101st app password: %d %s, want 400 InvalidRequest naming the limit", r.Status, r.Body)
	}
	if env.Log.Head() != head {
		t.Fatal("a refused app password was written")
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.revokeAppPassword", nil, a.Token, map[string]any{"name": "bulk-3"}); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := create("one-too-many"); r.Status != 200 {
		t.Fatalf("after a revocation: %d %s", r.Status, r.Body)
	}
}

// TestLoginBurstMemoryBounded: a burst of parallel logins (each with a
// wrong password, each a different account, so the throttle lets them all
// through) queues for password hashing instead of running every scrypt at
// once: the heap stays within a few scrypt buffers (16 MiB each) per core
// rather than one per login, and every login is answered.
func TestLoginBurstMemoryBounded(t *testing.T) {
	env := apitest.New(t)
	procs := runtime.GOMAXPROCS(0)
	n := 8*procs + 8
	accts := make([]*apitest.Account, n)
	for i := range accts {
		accts[i] = env.CreateAccount()
	}
	const scryptBuffer = 16 << 20
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() int64 {
		metrics.Read(sample)
		return int64(sample[0].Value.Uint64())
	}
	runtime.GC()
	base := heap()
	var peak int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			peak = max(peak, heap())
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i, a := range accts {
		wg.Go(func() { statuses[i] = login(env, a.DID.String(), "wrong-password").Status })
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	grew := peak - base
	t.Logf("%d parallel logins on %d cores: heap peak +%d MiB", n, procs, grew>>20)
	for i, s := range statuses {
		if s != 401 && s != 503 {
			t.Errorf("login %d: %d, want 401 (or 503 if it could not be queued)", i, s)
		}
	}
	if limit := int64(2*procs+4) * scryptBuffer; grew > limit {
		t.Fatalf("%d parallel logins grew the heap by %d MiB (limit %d MiB): password hashing is not bounded", n, grew>>20, limit>>20)
	}
}

// TestLoginBusy: logins that find password hashing saturated beyond the
// gate's wait are answered 503 ServiceUnavailable with Retry-After, not
// left to pile up; no more hashes ran at once than the gate's slots.
func TestLoginBusy(t *testing.T) {
	env := apitest.New(t)
	accts := make([]*apitest.Account, 8)
	for i := range accts {
		accts[i] = env.CreateAccount()
	}
	env.PDS.Hashing = auth.NewHashGate(1, time.Millisecond)
	var wg sync.WaitGroup
	rs := make([]*apitest.Response, len(accts))
	for i, a := range accts {
		wg.Go(func() { rs[i] = login(env, a.DID.String(), "wrong-password") })
	}
	wg.Wait()
	busy := 0
	for i, r := range rs {
		switch {
		case r.Status == 503 && r.ErrorName() == "ServiceUnavailable" && r.Header.Get("Retry-After") == "1":
			busy++
		case r.Status != 401:
			t.Errorf("login %d: %d %s %v", i, r.Status, r.Body, r.Header)
		}
	}
	if busy == 0 {
		t.Fatal("no login was refused as busy")
	}
	if st := env.PDS.Hashing.Stats(); st.Peak != 1 || st.Busy != uint64(busy) {
		t.Fatalf("gate %+v, want peak 1 and %d refused", st, busy)
	}
	// A refusal is not a failed attempt: the right password still logs in.
	env.PDS.Hashing = auth.NewHashGate(1, time.Minute)
	for i, r := range rs {
		if r.Status == 503 {
			if r := login(env, accts[i].DID.String(), accts[i].Password); r.Status != 200 {
				t.Fatalf("login after a busy refusal: %d %s", r.Status, r.Body)
			}
			break
		}
	}
}
