package proxy_test

import (
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/oauth/oauthtest"
	"github.com/pdslog/pdslog/api/proxy/proxytest"
)

// Service proxying with an OAuth session: the proxy signs for the account
// as for any session, and the token's scope decides which rpc: targets it
// may reach — the method and the service the proxy resolves.
func TestProxyOAuthScopes(t *testing.T) {
	env := proxytest.NewEnv(t, nil)
	u := env.CreateUser()
	appview := env.AppView.Ref("bsky_appview")
	tok := oauthtest.MintToken(t, env.Env, u.DID, "atproto rpc:app.bsky.feed.getFeed?aud="+appview)
	feed := "/xrpc/app.bsky.feed.getFeed?feed=at://did:plc:x/app.bsky.feed.generator/f"
	if r := tok.Call(t, env.Env, "GET", feed, nil); r.Status != 200 {
		t.Fatalf("getFeed within the scope: %d %s", r.Status, r.Body)
	}
	calls := env.AppView.Calls()
	if len(calls) != 1 || calls[0].Issuer != u.DID {
		t.Fatalf("AppView calls: %+v", calls)
	}
	for _, path := range []string{"/xrpc/app.bsky.feed.getSuggestions", "/xrpc/app.bsky.feed.getTimeline", "/xrpc/app.bsky.actor.getPreferences"} {
		if r := tok.Call(t, env.Env, "GET", path, nil); r.Status != 403 || r.ErrorName() != "ScopeMissingError" || !strings.Contains(string(r.Body), "rpc:") {
			t.Errorf("%s outside the scope: %d %s", path, r.Status, r.Body)
		}
	}
	// The same method at another service is outside the scope too.
	if r := tok.Call(t, env.Env, "GET", feed, nil, "atproto-proxy", env.Mod.Ref("bsky_appview")); r.Status != 403 || r.ErrorName() != "ScopeMissingError" {
		t.Errorf("getFeed at another service: %d %s", r.Status, r.Body)
	}
	if n := len(env.AppView.Calls()) + len(env.Mod.Calls()); n != 1 {
		t.Fatalf("refused calls reached a service: %d calls", n)
	}

	// transition:generic reaches everything but chat; transition:chat.bsky
	// reaches chat.
	generic := oauthtest.MintToken(t, env.Env, u.DID, "atproto transition:generic")
	if r := generic.Call(t, env.Env, "GET", "/xrpc/app.bsky.feed.getSuggestions", nil); r.Status != 200 {
		t.Fatalf("transition:generic getSuggestions: %d %s", r.Status, r.Body)
	}
	chatPath := "/xrpc/chat.bsky.convo.listConvos"
	if r := generic.Call(t, env.Env, "GET", chatPath, nil, "atproto-proxy", env.Mod.Ref("bsky_chat")); r.Status != 403 || r.ErrorName() != "ScopeMissingError" {
		t.Errorf("transition:generic reached chat: %d %s", r.Status, r.Body)
	}
	chat := oauthtest.MintToken(t, env.Env, u.DID, "atproto transition:chat.bsky")
	if r := chat.Call(t, env.Env, "GET", chatPath, nil, "atproto-proxy", env.Mod.Ref("bsky_chat")); r.Status != 200 {
		t.Errorf("transition:chat.bsky listConvos: %d %s", r.Status, r.Body)
	}
}

// A taken-down account's OAuth tokens are refused, and stay revoked
// after the takedown is reversed.
func TestOAuthTakedown(t *testing.T) {
	env := proxytest.NewEnv(t, nil)
	u := env.CreateUser()
	tok := oauthtest.MintToken(t, env.Env, u.DID, "atproto transition:generic")
	if r := tok.Call(t, env.Env, "GET", "/xrpc/com.atproto.server.getSession", nil); r.Status != 200 {
		t.Fatalf("getSession: %d %s", r.Status, r.Body)
	}
	if err := env.PDS.TakedownAccount(t.Context(), u.DID, true, ""); err != nil {
		t.Fatal(err)
	}
	if r := tok.Call(t, env.Env, "GET", "/xrpc/com.atproto.server.getSession", nil); r.Status != 401 || r.ErrorName() != "AccountTakedown" {
		t.Fatalf("getSession of a taken-down account: %d %s", r.Status, r.Body)
	}
	// The takedown revoked the session: reversing it does not bring the
	// token back.
	if err := env.PDS.TakedownAccount(t.Context(), u.DID, false, ""); err != nil {
		t.Fatal(err)
	}
	if r := tok.Call(t, env.Env, "GET", "/xrpc/com.atproto.server.getSession", nil); r.Status != 401 || r.ErrorName() != "invalid_token" {
		t.Fatalf("getSession with a token revoked by a reversed takedown: %d %s", r.Status, r.Body)
	}
}
