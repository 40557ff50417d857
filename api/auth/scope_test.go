package auth

import (
	"errors"
	"testing"
)

func TestScopeMethodTable(t *testing.T) {
	const (
		createRecord  = "com.atproto.repo.createRecord"
		createAppPass = "com.atproto.server.createAppPassword"
		updateEmail   = "com.atproto.server.updateEmail"
		signPlc       = "com.atproto.identity.signPlcOperation"
		chatSend      = "chat.bsky.convo.sendMessage"
		createAccount = "com.atproto.server.createAccount"
		getPrefs      = "app.bsky.actor.getPreferences"
		getSession    = "com.atproto.server.getSession"
		listAppPass   = "com.atproto.server.listAppPasswords"
		getServiceAu  = "com.atproto.server.getServiceAuth"
		getTimeline   = "app.bsky.feed.getTimeline"
	)
	// scope → method → allowed
	table := map[Scope]map[string]bool{
		ScopeAccess: {
			createRecord: true, createAppPass: true, updateEmail: true, signPlc: true,
			chatSend: true, createAccount: true, getPrefs: true, getSession: true, getTimeline: true,
		},
		ScopeAppPassPrivileged: {
			createRecord: true, createAppPass: false, updateEmail: false, signPlc: false,
			chatSend: true, createAccount: true, getPrefs: true, listAppPass: true, getTimeline: true,
		},
		ScopeAppPass: {
			createRecord: true, createAppPass: false, updateEmail: false, signPlc: false,
			chatSend: false, createAccount: false, getPrefs: true, listAppPass: true, getTimeline: true,
			"CHAT.BSKY.convo.sendMessage": false, "com.atproto.server.CREATEAPPPASSWORD": false,
		},
		ScopeTakendown: {
			createRecord: false, getPrefs: true, signPlc: true, getServiceAu: true,
			"com.atproto.sync.getRepo": true, "com.atproto.server.deactivateAccount": true,
			"com.atproto.server.activateAccount": false, getSession: false, getTimeline: false,
		},
		ScopeSignupQueued: {
			createRecord: false, getSession: true, "com.atproto.temp.checkSignupQueue": true,
			"app.bsky.notification.registerPush": true, getPrefs: false,
		},
		ScopeRefresh:             {createRecord: false, getSession: false},
		Scope("com.atproto.god"): {createRecord: false},
		Scope(""):                {createRecord: false},
	}
	for scope, methods := range table {
		for m, want := range methods {
			if got := scope.AllowsMethod(m); got != want {
				t.Errorf("%q.AllowsMethod(%s) = %v, want %v", scope, m, got, want)
			}
			err := scope.CheckMethod(m)
			if (err == nil) != want || (err != nil && !errors.Is(err, ErrInvalidToken)) {
				t.Errorf("%q.CheckMethod(%s) = %v", scope, m, err)
			}
		}
	}
}

func TestScopeLevels(t *testing.T) {
	if MethodAccessLevel("com.atproto.repo.importRepo") != AccessFull ||
		MethodAccessLevel("chat.bsky.actor.deleteAccount") != AccessPrivileged ||
		MethodAccessLevel("com.atproto.repo.putRecord") != AccessStandard {
		t.Error("levels")
	}
	if AccessFull.String() != "full" || AccessLevel(9).String() != "AccessLevel(9)" {
		t.Error("String")
	}
	for _, c := range []struct {
		app, priv, down bool
		want            Scope
	}{
		{false, false, false, ScopeAccess},
		{true, false, false, ScopeAppPass},
		{true, true, false, ScopeAppPassPrivileged},
		{false, false, true, ScopeTakendown},
		{true, true, true, ScopeTakendown},
	} {
		if got := SessionScope(c.app, c.priv, c.down); got != c.want {
			t.Errorf("SessionScope(%v,%v,%v) = %s", c.app, c.priv, c.down, got)
		}
	}
	if !IsProtectedMethod("com.atproto.identity.updateHandle") || !IsProtectedMethod("COM.ATPROTO.SERVER.GETSESSION") ||
		IsProtectedMethod("com.atproto.repo.createRecord") {
		t.Error("protected")
	}
	if !IsPrivilegedMethod("com.atproto.server.createAccount") || IsPrivilegedMethod("app.bsky.feed.getTimeline") {
		t.Error("privileged")
	}
	for _, s := range []Scope{ScopeAccess, ScopeRefresh, ScopeAppPass, ScopeAppPassPrivileged, ScopeSignupQueued, ScopeTakendown} {
		if !s.Valid() || s.IsAccess() == (s == ScopeRefresh) {
			t.Errorf("%s validity", s)
		}
	}
}
