package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	iauth "github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"
)

type keyCase struct {
	name string
	alg  string
	priv atcrypto.PrivateKeyExportable
}

func testKeys(t *testing.T) []keyCase {
	t.Helper()
	k, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	p, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	return []keyCase{{"K-256", AlgES256K, k}, {"P-256", AlgES256, p}}
}

// directory returns an indigo mock directory where did's atproto key is
// priv's public key.
func directory(t *testing.T, did syntax.DID, priv atcrypto.PrivateKey) *identity.MockDirectory {
	t.Helper()
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := identity.NewMockDirectory()
	dir.Insert(identity.Identity{
		DID:    did,
		Handle: syntax.HandleInvalid,
		Keys:   map[string]identity.VerificationMethod{"atproto": {Type: "Multikey", PublicKeyMultibase: pub.Multibase()}},
	})
	return dir
}

func decodeSeg(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// halfOrder is n/2 for each curve: a low-S signature has s ≤ n/2.
var halfOrder = map[string]*big.Int{
	AlgES256K: new(big.Int).Rsh(mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"), 1),
	AlgES256:  new(big.Int).Rsh(mustHex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"), 1),
}

func mustHex(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic(s)
	}
	return n
}

func TestServiceJWTFormat(t *testing.T) {
	iss := testDID
	for _, k := range testKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			before := time.Now().Unix()
			exp := time.Now().Add(30 * time.Minute)
			tok, err := ServiceJWT(k.priv, iss, "did:web:api.bsky.app#bsky_appview", "app.bsky.feed.getTimeline", exp)
			if err != nil {
				t.Fatal(err)
			}
			h := decodeSeg(t, tok, 0)
			if h["alg"] != k.alg || h["typ"] != "JWT" || len(h) != 2 {
				t.Errorf("header %v", h)
			}
			c := decodeSeg(t, tok, 1)
			if c["iss"] != string(iss) || c["aud"] != "did:web:api.bsky.app#bsky_appview" || c["lxm"] != "app.bsky.feed.getTimeline" ||
				c["exp"] != float64(exp.Unix()) || len(c) != 6 {
				t.Errorf("claims %v", c)
			}
			if iat := int64(c["iat"].(float64)); iat < before || iat > time.Now().Unix() {
				t.Errorf("iat %d", iat)
			}
			if jti, _ := c["jti"].(string); len(jti) != 32 {
				t.Errorf("jti %v", c["jti"])
			}
			// the payload's field order is the reference's
			raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
			if !strings.HasPrefix(string(raw), `{"iat":`) || !strings.Contains(string(raw), `,"iss":"`+string(iss)+`","aud":`) {
				t.Errorf("payload %s", raw)
			}

			// the signature: raw 64-byte r‖s, low-S, verifying strictly
			sig, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2])
			if err != nil || len(sig) != 64 {
				t.Fatalf("signature %d bytes, %v", len(sig), err)
			}
			pub, _ := k.priv.PublicKey()
			signing := tok[:strings.LastIndexByte(tok, '.')]
			if err := pub.HashAndVerify([]byte(signing), sig); err != nil {
				t.Errorf("strict verify: %v", err)
			}
			for i := 0; i < 20; i++ {
				tok, _ := ServiceJWT(k.priv, iss, "did:web:api.bsky.app", "", time.Time{})
				sig, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2])
				if s := new(big.Int).SetBytes(sig[32:]); s.Cmp(halfOrder[k.alg]) > 0 {
					t.Fatalf("high-S signature")
				}
			}

			// without lxm: omitted; without exp: iat + 1 minute
			tok, err = ServiceJWT(k.priv, iss, "did:web:api.bsky.app", "", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			c = decodeSeg(t, tok, 1)
			if _, ok := c["lxm"]; ok || c["exp"].(float64)-c["iat"].(float64) != 60 {
				t.Errorf("claims %v", c)
			}
		})
	}
}

// TestServiceJWTIndigoValidator: indigo's ServiceAuthValidator (what other
// Go services run) accepts our tokens, and refuses them for another
// audience, another method, after expiry or under another key.
func TestServiceJWTIndigoValidator(t *testing.T) {
	ctx := context.Background()
	// indigo logs (slog.Info) each signature retry; keep test output quiet
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { slog.SetDefault(prev) })
	iss := testDID
	aud := "did:web:api.bsky.app"
	lxm := syntax.NSID("app.bsky.feed.getTimeline")
	other := syntax.NSID("app.bsky.feed.getAuthorFeed")
	for _, k := range testKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			v := &iauth.ServiceAuthValidator{Audience: aud, Dir: directory(t, iss, k.priv)}
			tok, err := ServiceJWT(k.priv, iss, aud, lxm.String(), time.Now().Add(10*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if did, err := v.Validate(ctx, tok, &lxm); err != nil || did != iss {
				t.Fatalf("refused: %v %v", did, err)
			}
			if did, err := v.Validate(ctx, tok, nil); err != nil || did != iss {
				t.Fatalf("refused without lxm check: %v %v", did, err)
			}
			// default expiry, no lxm
			noLxm, _ := ServiceJWT(k.priv, iss, aud, "", time.Time{})
			if _, err := v.Validate(ctx, noLxm, nil); err != nil {
				t.Fatalf("lxm-less refused: %v", err)
			}

			// refusals
			wrongAud := &iauth.ServiceAuthValidator{Audience: "did:web:other.example", Dir: directory(t, iss, k.priv)}
			if _, err := wrongAud.Validate(ctx, tok, &lxm); !errors.Is(err, jwt.ErrTokenInvalidAudience) {
				t.Errorf("wrong aud: %v", err)
			}
			if _, err := v.Validate(ctx, tok, &other); !errors.Is(err, jwt.ErrTokenInvalidClaims) || !strings.Contains(err.Error(), "LXM") {
				t.Errorf("wrong lxm: %v", err)
			}
			if _, err := v.Validate(ctx, noLxm, &lxm); !errors.Is(err, jwt.ErrTokenInvalidClaims) || !strings.Contains(err.Error(), "LXM") {
				t.Errorf("missing lxm: %v", err)
			}
			expired, err := signServiceJWT(k.priv, iss, aud, lxm.String(), time.Now().Add(-2*time.Minute), time.Now().Add(-time.Minute), "x")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Validate(ctx, expired, &lxm); !errors.Is(err, jwt.ErrTokenExpired) {
				t.Errorf("expired: %v", err)
			}
			otherKey, _ := atcrypto.GeneratePrivateKeyK256()
			wrongKey := &iauth.ServiceAuthValidator{Audience: aud, Dir: directory(t, iss, otherKey)}
			if _, err := wrongKey.Validate(ctx, tok, &lxm); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
				t.Errorf("another key: %v", err)
			}
			// our own session verifier never takes one for an access token
			tk := newTestTokens(t)
			if _, err := tk.VerifyAccess(tok, time.Now()); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("service token as access: %v", err)
			}
		})
	}
}

func TestServiceJWTRefusesBadInput(t *testing.T) {
	k, _ := atcrypto.GeneratePrivateKeyK256()
	exp := time.Now().Add(time.Minute)
	for name, f := range map[string]func() (string, error){
		"nil key": func() (string, error) { return ServiceJWT(nil, testDID, "did:web:a.example", "", exp) },
		"bad iss": func() (string, error) { return ServiceJWT(k, "alice", "did:web:a.example", "", exp) },
		"bad aud": func() (string, error) { return ServiceJWT(k, testDID, "https://a.example", "", exp) },
		"empty fragment": func() (string, error) {
			return ServiceJWT(k, testDID, "did:web:a.example#", "", exp)
		},
		"bad lxm": func() (string, error) { return ServiceJWT(k, testDID, "did:web:a.example", "not an nsid", exp) },
	} {
		if tok, err := f(); err == nil {
			t.Errorf("%s: accepted: %s", name, tok)
		}
	}
	// a wrapper key type is judged by its public key
	if alg, err := ServiceAlg(wrapped{k}); alg != AlgES256K || err != nil {
		t.Errorf("wrapped key: %q %v", alg, err)
	}
}

type wrapped struct{ atcrypto.PrivateKey }

func TestCheckServiceAuthExp(t *testing.T) {
	now := t0
	for _, c := range []struct {
		exp  time.Time
		lxm  string
		good bool
	}{
		{time.Time{}, "", true},
		{now, "", true},
		{now.Add(time.Minute), "", true},
		{now.Add(time.Minute + time.Second), "", false},
		{now.Add(time.Minute + time.Second), "app.bsky.feed.getTimeline", true},
		{now.Add(time.Hour), "app.bsky.feed.getTimeline", true},
		{now.Add(time.Hour + time.Second), "app.bsky.feed.getTimeline", false},
		{now.Add(-time.Second), "app.bsky.feed.getTimeline", false},
	} {
		err := CheckServiceAuthExp(c.exp, c.lxm, now)
		if (err == nil) != c.good || (err != nil && !errors.Is(err, ErrBadExpiration)) {
			t.Errorf("exp %v lxm %q: %v", c.exp.Sub(now), c.lxm, err)
		}
	}
}

func TestCheckServiceAuthRequest(t *testing.T) {
	now := t0
	soon := now.Add(30 * time.Minute)
	const appview = "did:web:api.bsky.app#bsky_appview"
	for _, c := range []struct {
		name  string
		scope Scope
		aud   string
		lxm   string
		exp   time.Time
		want  error
	}{
		{"plain", ScopeAccess, appview, "app.bsky.feed.getTimeline", soon, nil},
		{"bare did aud", ScopeAppPass, "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "", time.Time{}, nil},
		{"localhost port", ScopeAccess, "did:web:localhost%3A2583", "", time.Time{}, nil},
		{"no exp", ScopeAccess, appview, "app.bsky.feed.getTimeline", time.Time{}, nil},
		{"aud not a did", ScopeAccess, "api.bsky.app", "", time.Time{}, ErrInvalidRequest},
		{"aud other method", ScopeAccess, "did:key:zQ3shscXNYZQZSPwegiv7uQZZV5kzATLBRtgJhs7uRY7pfSk4", "", time.Time{}, ErrInvalidRequest},
		{"aud did:web with path", ScopeAccess, "did:web:example.com:u:alice", "", time.Time{}, ErrInvalidRequest},
		{"aud did:web with port", ScopeAccess, "did:web:example.com%3A8080", "", time.Time{}, ErrInvalidRequest},
		{"aud short plc", ScopeAccess, "did:plc:abc", "", time.Time{}, ErrInvalidRequest},
		{"aud empty fragment", ScopeAccess, "did:web:api.bsky.app#", "", time.Time{}, ErrInvalidRequest},
		{"privileged lxm, appPass", ScopeAppPass, appview, "chat.bsky.convo.sendMessage", soon, ErrInvalidRequest},
		{"privileged lxm, appPassPrivileged", ScopeAppPassPrivileged, appview, "chat.bsky.convo.sendMessage", soon, nil},
		{"createAccount, appPass", ScopeAppPass, "did:web:entryway.example", "com.atproto.server.createAccount", soon, ErrInvalidRequest},
		{"protected lxm", ScopeAccess, appview, "com.atproto.server.createAppPassword", soon, ErrInvalidRequest},
		{"protected lxm case", ScopeAccess, appview, "com.atproto.identity.UPDATEHANDLE", soon, ErrInvalidRequest},
		{"too far", ScopeAccess, appview, "app.bsky.feed.getTimeline", now.Add(2 * time.Hour), ErrBadExpiration},
		{"past", ScopeAccess, appview, "app.bsky.feed.getTimeline", now.Add(-time.Minute), ErrBadExpiration},
		{"no lxm, too far", ScopeAccess, appview, "", now.Add(5 * time.Minute), ErrBadExpiration},
		{"takendown, createAccount", ScopeTakendown, "did:web:newpds.example", "com.atproto.server.createAccount", soon, nil},
		{"takendown, other", ScopeTakendown, appview, "app.bsky.feed.getTimeline", soon, ErrInvalidToken},
		{"takendown, no lxm", ScopeTakendown, appview, "", time.Time{}, ErrInvalidToken},
		{"signup queued", ScopeSignupQueued, appview, "", time.Time{}, ErrInvalidToken},
		{"refresh", ScopeRefresh, appview, "", time.Time{}, ErrInvalidToken},
	} {
		err := CheckServiceAuthRequest(c.scope, c.aud, c.lxm, c.exp, now)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
