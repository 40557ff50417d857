package accounts_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/projectiontest"
)

func TestPreferences(t *testing.T) {
	ctx := context.Background()
	l := eventlogtest.Open(t, nil)
	p := accounts.New(projectiontest.OpenStore(t))
	r := projectiontest.Feed(l, p)
	append_ := func(evs ...*eventlog.Event) {
		t.Helper()
		seq, err := l.Append(ctx, evs...)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CatchUp(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	prefs := func(did syntax.DID) string {
		t.Helper()
		v, err := p.Preferences(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	const (
		adult    = `{"$type":"app.bsky.actor.defs#adultContentPref","enabled":true}`
		personal = `{"$type":"app.bsky.actor.defs#personalDetailsPref","birthDate":"1990-01-02T00:00:00.000Z"}`
		feedView = `{"$type":"app.bsky.actor.defs#feedViewPref","feed":"home"}`
	)
	alice, ghost := syntax.DID("did:plc:alice"), syntax.DID("did:plc:ghost")
	append_(events.Must(alice, &events.AccountCreated{Handle: "alice.test", PasswordHash: "h"}))
	if got := prefs(alice); got != "null" {
		t.Fatalf("no preferences yet: %s", got)
	}
	append_(events.Must(alice, &events.PreferencesPut{Values: []json.RawMessage{raw(personal), raw(adult)}}))
	if got, want := prefs(alice), "["+personal+","+adult+"]"; got != want {
		t.Fatalf("after put: %s, want %s", got, want)
	}
	// An app password's put replaces all but what it keeps, which stays first.
	append_(events.Must(alice, &events.PreferencesPut{Values: []json.RawMessage{raw(feedView)},
		Keep: []string{"app.bsky.actor.defs#personalDetailsPref"}}))
	if got, want := prefs(alice), "["+personal+","+feedView+"]"; got != want {
		t.Fatalf("after keeping put: %s, want %s", got, want)
	}
	// A full put replaces everything.
	append_(events.Must(alice, &events.PreferencesPut{Values: []json.RawMessage{raw(adult)}}))
	if got, want := prefs(alice), "["+adult+"]"; got != want {
		t.Fatalf("after full put: %s, want %s", got, want)
	}
	// Preferences of an account this server does not hold are dropped.
	append_(events.Must(ghost, &events.PreferencesPut{Values: []json.RawMessage{raw(adult)}}))
	if got := prefs(ghost); got != "null" {
		t.Fatalf("unknown account's preferences kept: %s", got)
	}
	if _, err := p.Get(ctx, ghost); err == nil {
		t.Fatal("a preferences event created an account")
	}
	// They go with the account.
	append_(&eventlog.Event{Kind: eventlog.KindAccount, DID: alice, Account: &eventlog.Account{Status: "deleted"}})
	if got := prefs(alice); got != "null" {
		t.Fatalf("preferences survived deletion: %s", got)
	}
	// Private events never reach the firehose.
	if events.Must(alice, &events.PreferencesPut{}).Kind.Public() {
		t.Fatal("preferences event is public")
	}
}
