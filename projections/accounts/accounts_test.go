package accounts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/projectiontest"
)

// stream emits every kind of account event over a set of accounts.
type stream struct {
	rng      *rand.Rand
	dids     []syntax.DID
	created  map[syntax.DID]bool
	sessions map[syntax.DID][]string
	apps     map[syntax.DID][]string
	n        int
	key      atcrypto.PrivateKeyExportable
}

func newStream(seed uint64, n int) projectiontest.Stream {
	key, _ := atcrypto.GeneratePrivateKeyK256()
	s := &stream{rng: rand.New(rand.NewPCG(seed, 5)), created: map[syntax.DID]bool{},
		sessions: map[syntax.DID][]string{}, apps: map[syntax.DID][]string{}, key: key}
	for range n {
		s.dids = append(s.dids, s.newDID())
	}
	return s
}

func (s *stream) newDID() syntax.DID {
	s.n++
	return syntax.DID(fmt.Sprintf("did:plc:acct%020d", s.n))
}

func (s *stream) DIDs() []syntax.DID { return append([]syntax.DID{}, s.dids...) }

func (s *stream) Replace(did syntax.DID) {
	for i, d := range s.dids {
		if d == did {
			s.dids[i] = s.newDID()
		}
	}
}

func (s *stream) id() string { return fmt.Sprintf("tok%d", s.rng.IntN(1<<30)) }

func (s *stream) Next() *eventlog.Event {
	did := s.dids[s.rng.IntN(len(s.dids))]
	now := time.Now().UTC()
	if !s.created[did] {
		s.created[did] = true
		return events.Must(did, &events.AccountCreated{
			Handle: syntax.Handle(fmt.Sprintf("user%d.test", s.rng.IntN(1e6))), Email: fmt.Sprintf("u%d@example.com", s.rng.IntN(1e6)),
			PasswordHash: "hash", CreatedAt: now.Format(time.RFC3339Nano), InviteCode: "code-1"})
	}
	switch k := s.rng.IntN(16); k {
	case 0:
		return commit.SigningKeyEvent(did, s.key)
	case 1:
		return events.Must(did, &events.Password{PasswordHash: s.id()})
	case 2:
		return events.Must(did, &events.Email{Email: s.id() + "@example.com", Confirmed: s.rng.IntN(2) == 0})
	case 3, 4:
		id := s.id()
		s.sessions[did] = append(s.sessions[did], id)
		app := ""
		if len(s.apps[did]) > 0 && s.rng.IntN(2) == 0 {
			app = s.apps[did][0]
		}
		exp := now.Add(time.Duration(s.rng.IntN(3)-1) * time.Hour) // some already expired
		return events.Must(did, &events.SessionCreated{ID: id, AppPassword: app,
			CreatedAt: now.Format(time.RFC3339Nano), ExpiresAt: exp.Format(time.RFC3339Nano)})
	case 5:
		if ss := s.sessions[did]; len(ss) > 0 {
			old := ss[s.rng.IntN(len(ss))]
			nw := s.id()
			s.sessions[did] = append(ss, nw)
			return events.Must(did, &events.SessionRotated{Old: old, New: nw,
				At: now.Format(time.RFC3339Nano), ExpiresAt: now.Add(time.Hour).Format(time.RFC3339Nano)})
		}
	case 6:
		if ss := s.sessions[did]; len(ss) > 0 {
			id := ss[s.rng.IntN(len(ss))]
			if s.rng.IntN(3) == 0 {
				id = ""
			}
			return events.Must(did, &events.SessionRevoked{ID: id})
		}
	case 7:
		name := fmt.Sprintf("app%d", s.rng.IntN(5))
		s.apps[did] = append(s.apps[did], name)
		return events.Must(did, &events.AppPasswordCreated{Name: name, Hash: s.id(),
			Privileged: s.rng.IntN(2) == 0, CreatedAt: now.Format(time.RFC3339Nano)})
	case 8:
		if as := s.apps[did]; len(as) > 0 {
			return events.Must(did, &events.AppPasswordRevoked{Name: as[s.rng.IntN(len(as))]})
		}
	case 9:
		return events.Must("did:web:pds.test", &events.InviteCreated{Code: fmt.Sprintf("code-%d", s.rng.IntN(3)),
			Available: 5, CreatedBy: "admin", CreatedAt: now.Format(time.RFC3339Nano)})
	case 10:
		return &eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: syntax.Handle(fmt.Sprintf("renamed%d.test", s.rng.IntN(1e6)))}}
	case 11:
		active := s.rng.IntN(2) == 0
		st := ""
		if !active {
			st = "deactivated"
		}
		return &eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: active, Status: st}}
	case 12:
		put := events.PreferencesPut{Values: []json.RawMessage{
			json.RawMessage(fmt.Sprintf(`{"$type":"app.bsky.actor.defs#adultContentPref","enabled":%t}`, s.rng.IntN(2) == 0)),
			json.RawMessage(fmt.Sprintf(`{"$type":"app.bsky.actor.defs#personalDetailsPref","birthDate":"19%02d-01-02T00:00:00.000Z"}`, s.rng.IntN(100))),
		}[:s.rng.IntN(3)]}
		if s.rng.IntN(2) == 0 { // an app password's put keeps the personal details
			put.Keep = []string{"app.bsky.actor.defs#personalDetailsPref"}
		}
		return events.Must(did, &put)
	case 13:
		purposes := []string{events.PurposeConfirmEmail, events.PurposeResetPassword, events.PurposeSignIn}
		return events.Must(did, &events.EmailTokenIssued{Purpose: purposes[s.rng.IntN(len(purposes))],
			Hash: fmt.Sprintf("%064x", s.rng.IntN(4)), Email: "u@example.com", ExpiresAt: now.Add(15 * time.Minute).Format(time.RFC3339)})
	case 14:
		purposes := []string{"", events.PurposeConfirmEmail, events.PurposeResetPassword}
		return events.Must(did, &events.EmailTokenUsed{Purpose: purposes[s.rng.IntN(len(purposes))]})
	case 15:
		return events.Must(did, &events.EmailAuthFactor{Enabled: s.rng.IntN(2) == 0})
	}
	return events.Must("did:web:pds.test", &events.InviteDisabled{Codes: []string{"code-2"}})
}

func TestConformance(t *testing.T) {
	projectiontest.Run(t, func(s *projections.Store) projections.Projection { return accounts.New(s) }, newStream)
}

// newQueried opens a log and the projection fed from it; append_ appends
// events and waits until the projection has applied them.
func newQueried(t *testing.T) (l *eventlog.Log, p *accounts.Projection, append_ func(evs ...*eventlog.Event)) {
	l = eventlogtest.Open(t, nil)
	p = accounts.New(projectiontest.OpenStore(t))
	r := projectiontest.Feed(l, p)
	return l, p, func(evs ...*eventlog.Event) {
		t.Helper()
		seq, err := l.Append(t.Context(), evs...)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CatchUp(t.Context(), seq); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueries(t *testing.T) {
	ctx := context.Background()
	l, p, append_ := newQueried(t)
	did := syntax.DID("did:plc:alice")
	key, _ := atcrypto.GeneratePrivateKeyK256()
	now := time.Now().UTC()
	later := now.Add(time.Hour).Format(time.RFC3339Nano)
	append_(events.Must("did:web:pds.test", &events.InviteCreated{Code: "inv", Available: 1}))
	append_(
		commit.SigningKeyEvent(did, key),
		events.Must(did, &events.AccountCreated{Handle: "Alice.Test", Email: "Alice@Example.com", PasswordHash: "h1", InviteCode: "inv"}),
		events.Must(did, &events.SessionCreated{ID: "s1", ExpiresAt: later}),
		events.Must(did, &events.AppPasswordCreated{Name: "phone", Hash: "x"}),
		events.Must(did, &events.SessionCreated{ID: "s2", AppPassword: "phone", ExpiresAt: later}),
	)
	a, err := p.ByHandle(ctx, "alice.test")
	if err != nil || a.DID != did || a.SigningKeySeq != 2 || !a.Active {
		t.Fatalf("by handle: %+v %v", a, err)
	}
	if a, err := p.ByEmail(ctx, "alice@example.COM"); err != nil || a.DID != did {
		t.Fatalf("by email: %v", err)
	}
	if inv, err := p.Invite(ctx, "inv"); err != nil || len(inv.UsedBy) != 1 || inv.UsedBy[0] != did {
		t.Fatalf("invite: %+v %v", inv, err)
	}
	// The secret key itself is not in the projection: it is read from the log.
	kev, err := l.Get(ctx, a.SigningKeySeq)
	if err != nil || kev.Private.Type != events.TypeSigningKey {
		t.Fatalf("key event: %v", err)
	}
	// rotation, then revoking the first token ends the successor too
	append_(events.Must(did, &events.SessionRotated{Old: "s1", New: "s1b", ExpiresAt: later}))
	if s1, err := p.Session(ctx, did, "s1"); err != nil || s1.RotatedTo != "s1b" {
		t.Fatalf("rotated: %+v %v", s1, err)
	}
	append_(events.Must(did, &events.SessionRevoked{ID: "s1"}))
	for _, id := range []string{"s1", "s1b"} {
		if _, err := p.Session(ctx, did, id); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatalf("session %s after revoke: %v", id, err)
		}
	}
	// revoking an app password ends its sessions
	append_(events.Must(did, &events.AppPasswordRevoked{Name: "phone"}))
	if _, err := p.Session(ctx, did, "s2"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("app password session survived: %v", err)
	}
	if aps, _ := p.AppPasswords(ctx, did); len(aps) != 0 {
		t.Fatalf("app passwords %v", aps)
	}
	// handle change moves the index
	append_(&eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: "bob.test"}})
	if _, err := p.ByHandle(ctx, "alice.test"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("old handle: %v", err)
	}
	if a, err := p.ByHandle(ctx, "bob.test"); err != nil || a.DID != did {
		t.Fatalf("new handle: %v", err)
	}
	// deletion leaves nothing
	append_(&eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Status: "deleted"}})
	if _, err := p.Get(ctx, did); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := p.ByEmail(ctx, "alice@example.com"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("email after delete: %v", err)
	}
}

// Get is served from a cache: after every applied change (status, handle,
// reset) it must answer the new state, with readers racing the writes.
func TestGetSeesEveryChange(t *testing.T) {
	ctx := context.Background()
	_, p, append_ := newQueried(t)
	did := syntax.DID("did:plc:carol")
	key, _ := atcrypto.GeneratePrivateKeyK256()
	append_(commit.SigningKeyEvent(did, key),
		events.Must(did, &events.AccountCreated{Handle: "carol.test", Email: "c@example.com", PasswordHash: "h"}))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a reader racing every change
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = p.Get(ctx, did)
			}
		}
	}()
	for i := range 40 {
		active := i%2 == 1
		status := "deactivated"
		if active {
			status = ""
		}
		handle := syntax.Handle(fmt.Sprintf("carol%d.test", i))
		append_(&eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: active, Status: status}})
		if a, err := p.Get(ctx, did); err != nil || a.Active != active || a.Status != status {
			t.Fatalf("change %d: Get = %+v, %v; want active %v status %q", i, a, err, active, status)
		}
		append_(&eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: handle}})
		if a, err := p.Get(ctx, did); err != nil || a.Handle != handle {
			t.Fatalf("change %d: Get = %+v, %v; want handle %s", i, a, err, handle)
		}
		// Callers may modify what Get returns without touching the cache.
		a, _ := p.Get(ctx, did)
		a.Handle, a.Active = "mutated.test", !a.Active
		if b, _ := p.Get(ctx, did); b.Handle != handle || b.Active != active {
			t.Fatalf("change %d: a caller's edit leaked into the cache: %+v", i, b)
		}
	}
	close(stop)
	<-done
	if err := p.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(ctx, did); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("after reset: %v", err)
	}
}

// Emailed tokens: one per account and purpose, found by account or by
// hash; a new one replaces the old (whose hash no longer finds anything);
// used ones and a deleted account's are gone.
func TestEmailTokens(t *testing.T) {
	_, p, add := newQueried(t)
	ctx := context.Background()
	alice, bob := syntax.DID("did:plc:aliceaaaaaaaaaaaaaaaaaaa"), syntax.DID("did:plc:bobbbbbbbbbbbbbbbbbbbbbb")
	for _, d := range []syntax.DID{alice, bob} {
		add(events.Must(d, &events.AccountCreated{Handle: syntax.Handle(d[8:13] + ".test"), Email: string(d[8:13]) + "@example.com", PasswordHash: "h", CreatedAt: "2026-01-01T00:00:00Z"}))
	}
	issue := func(d syntax.DID, purpose, hash string) {
		add(events.Must(d, &events.EmailTokenIssued{Purpose: purpose, Hash: hash, Email: "x@example.com", ExpiresAt: "2026-01-01T00:15:00Z"}))
	}
	issue(alice, events.PurposeResetPassword, "h1")
	issue(alice, events.PurposeConfirmEmail, "h2")
	issue(bob, events.PurposeResetPassword, "h3")
	if did, err := p.EmailTokenOwner(ctx, events.PurposeResetPassword, "h1"); err != nil || did != alice {
		t.Fatalf("owner of h1: %s %v", did, err)
	}
	if _, err := p.EmailTokenOwner(ctx, events.PurposeConfirmEmail, "h1"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("h1 found under another purpose: %v", err)
	}
	issue(alice, events.PurposeResetPassword, "h4") // replaces h1
	if _, err := p.EmailTokenOwner(ctx, events.PurposeResetPassword, "h1"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("replaced token still found: %v", err)
	}
	if tok, err := p.EmailToken(ctx, alice, events.PurposeResetPassword); err != nil || tok.Hash != "h4" {
		t.Fatalf("alice's reset token: %+v %v", tok, err)
	}
	add(events.Must(alice, &events.EmailTokenUsed{Purpose: events.PurposeResetPassword}))
	if _, err := p.EmailToken(ctx, alice, events.PurposeResetPassword); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("used token still there: %v", err)
	}
	if tok, err := p.EmailToken(ctx, alice, events.PurposeConfirmEmail); err != nil || tok.Hash != "h2" {
		t.Fatalf("other purpose lost: %+v %v", tok, err)
	}
	add(events.Must(alice, &events.EmailTokenUsed{})) // every purpose
	if _, err := p.EmailTokenOwner(ctx, events.PurposeConfirmEmail, "h2"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("all-purpose retirement kept h2: %v", err)
	}
	add(&eventlog.Event{Kind: eventlog.KindAccount, DID: bob, Account: &eventlog.Account{Status: "deleted"}})
	if _, err := p.EmailTokenOwner(ctx, events.PurposeResetPassword, "h3"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("deleted account's token still found: %v", err)
	}
	add(events.Must(alice, &events.EmailAuthFactor{Enabled: true}))
	if a, err := p.Get(ctx, alice); err != nil || !a.EmailAuthFactor {
		t.Fatalf("email 2FA not on: %+v %v", a, err)
	}
}
