package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/oauth"
	"github.com/pdslog/pdslog/projections/projectiontest"
)

const service = syntax.DID("did:web:pds.example.com")

// stream mixes the random stream's events with OAuth events over small
// pools of request ids, codes, sessions, refresh hashes and devices, so
// that events refer to each other often (and sometimes to what a purge or
// revocation removed). As on a real server, secrets' hashes are unique to
// an account (they are random) and a request gets at most one code.
type stream struct {
	*eventlogtest.Stream
	rng   *rand.Rand
	clock time.Time
	n     int
	coded map[int]bool
}

func newStream(seed uint64, n int) projectiontest.Stream {
	return &stream{Stream: eventlogtest.NewStream(seed, n), rng: rand.New(rand.NewPCG(seed, 3)),
		clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), coded: map[int]bool{}}
}

func (s *stream) pick(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, s.rng.IntN(n)) }

// secret is a hash from a small pool of did's.
func (s *stream) secret(did syntax.DID, prefix string, n int) string {
	return fmt.Sprintf("%s-%s%d", did, prefix, s.rng.IntN(n))
}

func (s *stream) Next() *eventlog.Event {
	if s.rng.IntN(3) == 0 {
		return s.Stream.Next()
	}
	s.clock = s.clock.Add(time.Duration(s.rng.IntN(600)) * time.Second)
	at := s.clock.Format(time.RFC3339)
	exp := s.clock.Add(5 * time.Minute).Format(time.RFC3339)
	dids := s.DIDs()
	did := dids[s.rng.IntN(len(dids))]
	var ev *eventlog.Event
	switch k := s.rng.IntN(12); k {
	case 0, 1:
		s.n++
		ev = events.Must(service, &events.OAuthRequest{ID: fmt.Sprintf("req%d", s.n), ClientID: s.pick("https://c.example.com/", 3),
			RedirectURI: "https://c.example.com/cb", Scope: "atproto transition:generic", CodeChallenge: "x", CreatedAt: at, ExpiresAt: exp})
	case 2:
		ev = events.Must(service, &events.OAuthRequestBound{ID: fmt.Sprintf("req%d", s.rng.IntN(s.n+1)), Device: s.pick("dev", 4), ExpiresAt: exp})
	case 3:
		ev = events.Must(service, &events.OAuthRequestEnded{ID: fmt.Sprintf("req%d", s.rng.IntN(s.n+1)), Reason: "access_denied"})
	case 4:
		r := s.n - s.rng.IntN(3)
		if s.coded[r] {
			return s.Stream.Next()
		}
		s.coded[r] = true
		ev = events.Must(did, &events.OAuthCode{RequestID: fmt.Sprintf("req%d", r), CodeHash: s.secret(did, "code", 8),
			ClientID: s.pick("https://c.example.com/", 3), Scope: s.pick("atproto repo:app.bsky.feed.post", 2), Device: s.pick("dev", 4), ExpiresAt: exp})
	case 5:
		ev = events.Must(did, &events.OAuthDeviceSignIn{Device: s.pick("dev", 4), Remember: s.rng.IntN(2) == 0, At: at})
	case 6:
		dev := s.pick("dev", 4)
		if s.rng.IntN(4) == 0 {
			dev = ""
		}
		ev = events.Must(did, &events.OAuthDeviceSignOut{Device: dev})
	case 7, 8:
		ev = events.Must(did, &events.OAuthSession{ID: s.pick("ses", 6), ClientID: s.pick("https://c.example.com/", 3), Scope: "atproto",
			DPoPJKT: "jkt", CodeHash: s.secret(did, "code", 8), RefreshHash: s.secret(did, "ref", 30), TokenID: s.pick("tok", 100),
			CreatedAt: at, ExpiresAt: exp, SessionExpiresAt: exp})
	case 9:
		ev = events.Must(did, &events.OAuthRefreshed{ID: s.pick("ses", 6), RefreshHash: s.secret(did, "ref", 30), TokenID: s.pick("tok", 100), At: at, ExpiresAt: exp})
	case 10:
		id := s.pick("ses", 6)
		if s.rng.IntN(4) == 0 {
			id = ""
		}
		ev = events.Must(did, &events.OAuthRevoked{ID: id, Reason: "test"})
	default:
		ev = events.Must(did, &events.SessionRevoked{Reason: "password reset"})
	}
	return ev
}

func TestConformance(t *testing.T) {
	projectiontest.Run(t, func(s *projections.Store) projections.Projection { return oauth.New(s) }, newStream)
}

// env is a log and the projection fed from it.
type env struct {
	t   *testing.T
	log *eventlog.Log
	p   *oauth.Projection
	r   *projections.Runner
}

func newEnv(t *testing.T) *env {
	l := eventlogtest.Open(t, &eventlog.Options{SealKey: make([]byte, 32)})
	s, err := projections.OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p := oauth.New(s)
	return &env{t: t, log: l, p: p, r: projections.NewRunner(l, []projections.Projection{p}, nil)}
}

func (e *env) add(evs ...*eventlog.Event) {
	e.t.Helper()
	seq, err := e.log.Append(context.Background(), evs...)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.r.CatchUp(context.Background(), seq); err != nil {
		e.t.Fatal(err)
	}
}

// TestLifecycle follows one request through code, session, refreshes and
// revocation, and checks each lookup at each step.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := syntax.DID("did:plc:alice")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }

	e.add(events.Must(service, &events.OAuthRequest{ID: "r1", ClientID: "https://app.example.com/m.json", RedirectURI: "https://app.example.com/cb",
		Scope: "atproto transition:generic", CodeChallenge: "c", CreatedAt: ts(0), ExpiresAt: ts(5 * time.Minute)}))
	r, err := e.p.Request(ctx, "r1")
	if err != nil || r.Status() != oauth.RequestPending || r.Device != "" {
		t.Fatalf("pushed request: %+v %v", r, err)
	}
	e.add(events.Must(service, &events.OAuthRequestBound{ID: "r1", Device: "devA", ExpiresAt: ts(6 * time.Minute)}))
	// A second device cannot take the request over.
	e.add(events.Must(service, &events.OAuthRequestBound{ID: "r1", Device: "devB", ExpiresAt: ts(7 * time.Minute)}))
	if r, _ := e.p.Request(ctx, "r1"); r.Device != "devA" || r.Expires != ts(6*time.Minute) {
		t.Fatalf("bound request: %+v", r)
	}
	e.add(events.Must(alice, &events.OAuthDeviceSignIn{Device: "devA", Remember: true, At: ts(time.Minute)}),
		events.Must(alice, &events.OAuthCode{RequestID: "r1", CodeHash: "code1", ClientID: "https://app.example.com/m.json",
			Scope: "atproto transition:generic", Device: "devA", ExpiresAt: ts(10 * time.Minute)}))
	if r, err := e.p.RequestByCode(ctx, "code1"); err != nil || r.Status() != oauth.RequestAuthorized || r.Grant.DID != alice {
		t.Fatalf("request by code: %+v %v", r, err)
	}
	if das, _ := e.p.DeviceAccounts(ctx, "devA"); len(das) != 1 || das[0].DID != alice || !das[0].Remember {
		t.Fatalf("device accounts: %+v", das)
	}
	if ac, err := e.p.AuthorizedClient(ctx, alice, "https://app.example.com/m.json"); err != nil || len(ac.Scopes) != 2 {
		t.Fatalf("authorized client: %+v %v", ac, err)
	}
	e.add(events.Must(alice, &events.OAuthSession{ID: "s1", ClientID: "https://app.example.com/m.json", Scope: "atproto transition:generic",
		DPoPJKT: "jkt", CodeHash: "code1", RefreshHash: "ref1", TokenID: "tok1", CreatedAt: ts(2 * time.Minute),
		ExpiresAt: ts(14 * 24 * time.Hour), SessionExpiresAt: ts(14 * 24 * time.Hour)}))
	if r, _ := e.p.Request(ctx, "r1"); r.Status() != oauth.RequestExchanged || r.Grant.SessionID != "s1" {
		t.Fatalf("exchanged request: %+v", r)
	}
	if s, err := e.p.SessionByCode(ctx, "code1"); err != nil || s.ID != "s1" {
		t.Fatalf("session by code: %+v %v", s, err)
	}
	e.add(events.Must(alice, &events.OAuthRefreshed{ID: "s1", RefreshHash: "ref2", TokenID: "tok2", At: ts(time.Hour), ExpiresAt: ts(15 * 24 * time.Hour)}))
	for _, h := range []string{"ref1", "ref2"} {
		s, err := e.p.SessionByRefresh(ctx, h)
		if err != nil || s.ID != "s1" || s.RefreshHash != "ref2" || s.TokenID != "tok2" {
			t.Fatalf("session by refresh %s: %+v %v", h, s, err)
		}
	}
	e.add(events.Must(alice, &events.OAuthRevoked{ID: "s1", Reason: "revoked"}))
	for _, h := range []string{"ref1", "ref2"} {
		if _, err := e.p.SessionByRefresh(ctx, h); !errors.Is(err, oauth.ErrNotFound) {
			t.Fatalf("refresh %s after revocation: %v", h, err)
		}
	}
	if _, err := e.p.SessionByCode(ctx, "code1"); !errors.Is(err, oauth.ErrNotFound) {
		t.Fatalf("code after revocation: %v", err)
	}
	if ss, _ := e.p.Sessions(ctx, alice); len(ss) != 0 {
		t.Fatalf("sessions after revocation: %+v", ss)
	}

	// A password reset ends every OAuth session and sign-in.
	e.add(events.Must(alice, &events.OAuthSession{ID: "s2", ClientID: "c", Scope: "atproto", DPoPJKT: "jkt", RefreshHash: "ref3", TokenID: "tok3",
		CreatedAt: ts(2 * time.Hour), ExpiresAt: ts(48 * time.Hour), SessionExpiresAt: ts(48 * time.Hour)}))
	e.add(events.Must(alice, &events.SessionRevoked{Reason: "password reset"}))
	if ss, _ := e.p.Sessions(ctx, alice); len(ss) != 0 {
		t.Fatalf("sessions after password reset: %+v", ss)
	}
	if das, _ := e.p.DeviceAccounts(ctx, "devA"); len(das) != 0 {
		t.Fatalf("device accounts after password reset: %+v", das)
	}

	// Requests are dropped an hour after they expire, when a later one is
	// pushed.
	e.add(events.Must(service, &events.OAuthRequest{ID: "r2", ClientID: "c", CreatedAt: ts(65 * time.Minute), ExpiresAt: ts(70 * time.Minute)}))
	if _, err := e.p.Request(ctx, "r1"); err != nil {
		t.Fatalf("r1 dropped before its grace ended: %v", err)
	}
	e.add(events.Must(service, &events.OAuthRequest{ID: "r3", ClientID: "c", CreatedAt: ts(71 * time.Minute), ExpiresAt: ts(76 * time.Minute)}))
	if _, err := e.p.Request(ctx, "r1"); !errors.Is(err, oauth.ErrNotFound) {
		t.Fatalf("r1 after its grace: %v", err)
	}
	if _, err := e.p.RequestByCode(ctx, "code1"); !errors.Is(err, oauth.ErrNotFound) {
		t.Fatalf("code of a dropped request: %v", err)
	}
	if _, err := e.p.Request(ctx, "r2"); err != nil {
		t.Fatalf("r2: %v", err)
	}

	// A deleted account leaves nothing.
	e.add(events.Must(alice, &events.OAuthDeviceSignIn{Device: "devC", At: ts(72 * time.Minute)}),
		events.Must(alice, &events.OAuthSession{ID: "s3", ClientID: "c", Scope: "atproto", RefreshHash: "ref9", CreatedAt: ts(72 * time.Minute),
			ExpiresAt: ts(96 * time.Hour), SessionExpiresAt: ts(96 * time.Hour)}),
		&eventlog.Event{Kind: eventlog.KindAccount, DID: alice, Account: &eventlog.Account{Status: "deleted"}})
	if _, err := e.p.SessionByRefresh(ctx, "ref9"); !errors.Is(err, oauth.ErrNotFound) {
		t.Fatalf("session of a deleted account: %v", err)
	}
	if das, _ := e.p.AccountDevices(ctx, alice); len(das) != 0 {
		t.Fatalf("devices of a deleted account: %+v", das)
	}
	if _, err := e.p.AuthorizedClient(ctx, alice, "https://app.example.com/m.json"); !errors.Is(err, oauth.ErrNotFound) {
		t.Fatalf("authorized clients of a deleted account: %v", err)
	}
}
