package actor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/proxy/proxytest"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/projectiontest"
)

const (
	adult    = `{"$type":"app.bsky.actor.defs#adultContentPref","enabled":true}`
	feedView = `{"$type":"app.bsky.actor.defs#feedViewPref","feed":"home","hideReplies":false}`
	personal = `{"$type":"app.bsky.actor.defs#personalDetailsPref","birthDate":"1990-01-02T00:00:00.000Z"}`
	future   = `{"$type":"app.bsky.actor.defs#somethingNewPref","anything":{"goes":[1,2]}}`
	declared = `{"$type":"app.bsky.actor.defs#declaredAgePref","isOverAge13":true,"isOverAge16":true,"isOverAge18":true}`
)

func put(env *proxytest.Env, token, body string, headers ...string) *apitest.Response {
	return env.Request("POST", "/xrpc/app.bsky.actor.putPreferences", nil, token, []byte(body), headers...)
}

// prefs gets the preferences as a compact JSON array.
func prefs(t *testing.T, env *proxytest.Env, token string) string {
	t.Helper()
	r := env.Request("GET", "/xrpc/app.bsky.actor.getPreferences", nil, token, nil)
	if r.Status != 200 {
		t.Fatalf("getPreferences: %d %s", r.Status, r.Body)
	}
	var out struct{ Preferences []json.RawMessage }
	r.JSON(t, &out)
	return compactList(t, out.Preferences)
}

func compactList(t *testing.T, items []json.RawMessage) string {
	t.Helper()
	var parts []string
	for _, it := range items {
		var b bytes.Buffer
		if err := json.Compact(&b, it); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, b.String())
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func list(items ...string) string { return "[" + strings.Join(items, ",") + "]" }

func errorOf(t *testing.T, r *apitest.Response) (int, string, string) {
	t.Helper()
	var e xrpc.Body
	_ = json.Unmarshal(r.Body, &e)
	return r.Status, e.Error, e.Message
}

func TestPreferences(t *testing.T) {
	env := proxytest.NewEnv(t, nil)
	alice, bob := env.CreateUser(), env.CreateUser()
	ctx := context.Background()

	if got := prefs(t, env, alice.Token); got != "[]" {
		t.Fatalf("new account: %s", got)
	}
	// A full session sets them all; the derived declared-age one is not
	// stored but computed from the birth date.
	body := `{"preferences":[` + adult + `,` + feedView + `,` + personal + `,` + future + `,` + declared + `]}`
	if r := put(env, alice.Token, body); r.Status != 200 || len(r.Body) != 0 {
		t.Fatalf("putPreferences: %d %s", r.Status, r.Body)
	}
	if got, want := prefs(t, env, alice.Token), list(adult, feedView, personal, future, declared); got != want {
		t.Fatalf("round trip:\n got %s\nwant %s", got, want)
	}
	if got := prefs(t, env, bob.Token); got != "[]" {
		t.Fatalf("bob sees %s", got)
	}

	// An app password sees the declared age but not the personal details,
	// may not set them, and keeps them when it replaces the rest.
	app := env.AppPassword(alice, "phone", false)
	if got, want := prefs(t, env, app), list(adult, feedView, future, declared); got != want {
		t.Fatalf("app password view:\n got %s\nwant %s", got, want)
	}
	r := put(env, app, `{"preferences":[`+personal+`]}`)
	if st, name, msg := errorOf(t, r); st != 400 || name != "InvalidRequest" || msg != "Do not have authorization to set preferences: app.bsky.actor.defs#personalDetailsPref" {
		t.Fatalf("app password setting personal details: %d %s", st, r.Body)
	}
	off := `{"$type":"app.bsky.actor.defs#adultContentPref","enabled":false}`
	if r := put(env, app, `{"preferences":[`+off+`]}`); r.Status != 200 {
		t.Fatalf("app password put: %d %s", r.Status, r.Body)
	}
	if got, want := prefs(t, env, alice.Token), list(personal, off, declared); got != want {
		t.Fatalf("after the app password's put:\n got %s\nwant %s", got, want)
	}

	// Refusals, in the reference's words; nothing changes.
	for _, tc := range []struct{ body, msg string }{
		{`{"preferences":[{"enabled":true}]}`, "Preference is missing a $type"},
		{`{"preferences":[{"$type":"com.example.pref","x":1}]}`, "Some preferences are not in the app.bsky namespace"},
		{`{"preferences":[{"$type":"app.bsky.actor.defs#adultContentPref"}]}`, "Input/preferences is invalid"},
		{`{"preferences":[{"$type":"app.bsky.actor.defs#adultContentPref","enabled":"yes"}]}`, "Input/preferences is invalid"},
		{`{"preferences":[{"$type":"app.bsky.actor.defs#savedFeedsPref","pinned":["not an at-uri"],"saved":[]}]}`, "Input/preferences is invalid"},
		{`{"preferences":["app.bsky.actor.defs#adultContentPref"]}`, "Input/preferences/0 is invalid"},
		{`{"preferences":{}}`, "invalid JSON body"},
		{`{}`, `Input must have the property "preferences"`},
	} {
		r := put(env, alice.Token, tc.body)
		if st, name, msg := errorOf(t, r); st != 400 || name != "InvalidRequest" || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %s, want 400 InvalidRequest %q", tc.body, st, r.Body, tc.msg)
		}
	}
	big := `{"preferences":[{"$type":"app.bsky.actor.defs#somethingNewPref","x":"` + strings.Repeat("a", 160<<10) + `"}]}`
	if r := put(env, alice.Token, big); r.Status != 413 {
		t.Errorf("oversized body: %d", r.Status)
	}
	if r := env.Request("GET", "/xrpc/app.bsky.actor.getPreferences", nil, "", nil); r.Status != 401 {
		t.Errorf("unauthenticated: %d %s", r.Status, r.Body)
	}
	if got, want := prefs(t, env, alice.Token), list(personal, off, declared); got != want {
		t.Fatalf("refused puts changed something: %s", got)
	}

	// Private events: in the log, never public.
	it, err := env.Log.IterRepo(ctx, alice.DID, 0)
	if err != nil {
		t.Fatal(err)
	}
	puts := 0
	for it.Next() {
		if ev := it.Event(); ev.Kind == eventlog.KindPrivate && ev.Private.Type == events.TypePreferencesPut {
			puts++
			if ev.Kind.Public() {
				t.Error("preferences event is public")
			}
		}
	}
	if err := it.Close(); err != nil || puts != 2 {
		t.Fatalf("%d preferences events in the log (%v), want 2", puts, err)
	}

	// Replay: a projection rebuilt from the log holds the same preferences.
	fresh := accounts.New(projectiontest.OpenStore(t))
	if err := projections.NewRunner(env.Log, []projections.Projection{fresh}, nil).CatchUp(ctx, env.Log.Head()); err != nil {
		t.Fatal(err)
	}
	live, _ := env.Accounts.Preferences(ctx, alice.DID)
	replayed, _ := fresh.Preferences(ctx, alice.DID)
	if a, b := compactList(t, live), compactList(t, replayed); a != b || a != list(personal, off) {
		t.Fatalf("replayed %s, live %s", b, a)
	}

	// An atproto-proxy header naming another AppView forwards the call
	// there; one naming the configured AppView is served here.
	other := env.Mod
	n := len(other.Calls())
	r = env.Request("GET", "/xrpc/app.bsky.actor.getPreferences", nil, alice.Token, nil, "atproto-proxy", other.Ref("bsky_appview"))
	if r.Status != 200 || string(bytes.TrimSpace(r.Body)) != `{"ok":true}` || len(other.Calls()) != n+1 {
		t.Fatalf("forwarded getPreferences: %d %s", r.Status, r.Body)
	}
	if c := other.Calls()[n]; c.NSID != "app.bsky.actor.getPreferences" || c.Issuer != alice.DID {
		t.Errorf("forwarded call %+v", c)
	}
	if r := put(env, alice.Token, `{"preferences":[]}`, "atproto-proxy", other.Ref("bsky_appview")); r.Status != 200 || len(other.Calls()) != n+2 {
		t.Fatalf("forwarded putPreferences: %d %s", r.Status, r.Body)
	}
	if got := prefs(t, env, alice.Token); got != list(personal, off, declared) {
		t.Fatalf("a forwarded put changed local preferences: %s", got)
	}
	r = env.Request("GET", "/xrpc/app.bsky.actor.getPreferences", nil, alice.Token, nil, "atproto-proxy", env.AppView.Ref("bsky_appview"))
	if r.Status != 200 || len(env.AppView.Calls()) != 0 {
		t.Fatalf("configured AppView's preferences went out: %d %s", r.Status, r.Body)
	}

	// They leave with the account, from the projection and the log.
	r = env.Request("POST", "/xrpc/com.atproto.admin.deleteAccount", nil, "", map[string]any{"did": alice.DID},
		"Authorization", apitest.AdminAuth(apitest.AdminPassword))
	if r.Status != 200 {
		t.Fatalf("deleteAccount: %d %s", r.Status, r.Body)
	}
	if err := env.Runner.CatchUp(ctx, env.Log.Head()); err != nil {
		t.Fatal(err)
	}
	if p, _ := env.Accounts.Preferences(ctx, alice.DID); p != nil {
		t.Fatalf("preferences survived the account: %s", compactList(t, p))
	}
	fresh = accounts.New(projectiontest.OpenStore(t))
	if err := projections.NewRunner(env.Log, []projections.Projection{fresh}, nil).CatchUp(ctx, env.Log.Head()); err != nil {
		t.Fatal(err)
	}
	if p, _ := fresh.Preferences(ctx, alice.DID); p != nil {
		t.Fatalf("replay after deletion brought preferences back: %s", compactList(t, p))
	}
}

func TestDeclaredAge(t *testing.T) {
	env := proxytest.NewEnv(t, nil)
	u := env.CreateUser()
	// Someone turning 16 tomorrow is 15 today.
	tomorrow := time.Now().UTC().AddDate(-16, 0, 1).Format("2006-01-02") + "T00:00:00.000Z"
	if r := put(env, u.Token, `{"preferences":[{"$type":"app.bsky.actor.defs#personalDetailsPref","birthDate":"`+tomorrow+`"}]}`); r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	got := prefs(t, env, u.Token)
	if !strings.Contains(got, `{"$type":"app.bsky.actor.defs#declaredAgePref","isOverAge13":true,"isOverAge16":false,"isOverAge18":false}`) {
		t.Fatalf("declared age: %s", got)
	}
}
