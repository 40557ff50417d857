package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	testSecret  = []byte("test-jwt-secret-0123456789abcdef")
	testService = syntax.DID("did:web:pds.example.com")
	testDID     = syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	testSID     = "a2V5LWZvci10aGUtc2Vzc2lvbi1vbmUtdHdvLXRocmU"
	testIat     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func newTestTokens(t testing.TB) *Tokens {
	t.Helper()
	tk, err := NewTokens(testSecret, testService)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func issueTest(t testing.TB, tk *Tokens, scope Scope) Session {
	t.Helper()
	s, err := tk.Issue(SessionParams{DID: testDID, SessionID: testSID, Scope: scope, IssuedAt: testIat})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// craft builds an HS256-style JWS from raw header and payload values,
// independently of golang-jwt, signing with secret under alg's HMAC (or
// leaving the signature empty for alg "none").
func craft(header, payload any, secret []byte) string {
	enc := func(v any) string {
		var b []byte
		switch v := v.(type) {
		case string:
			b = []byte(v)
		default:
			b, _ = json.Marshal(v)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(payload)
	if secret == nil {
		return signing + "."
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func accessPayload() map[string]any {
	return map[string]any{
		"scope": "com.atproto.access",
		"aud":   string(testService),
		"sub":   string(testDID),
		"iat":   testIat.Unix(),
		"exp":   testIat.Add(AccessTokenTTL).Unix(),
	}
}

func refreshPayload() map[string]any {
	return map[string]any{
		"scope": "com.atproto.refresh",
		"aud":   string(testService),
		"sub":   string(testDID),
		"jti":   testSID,
		"iat":   testIat.Unix(),
		"exp":   testIat.Add(RefreshTokenTTL).Unix(),
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

var (
	hdrAccess  = map[string]any{"alg": "HS256", "typ": "at+jwt"}
	hdrRefresh = map[string]any{"alg": "HS256", "typ": "refresh+jwt"}
)

// tamper flips one character of the middle (payload) segment.
func tamperPayload(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	b = []byte(strings.Replace(string(b), `"com.atproto.appPass"`, `"com.atproto.access"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// forge replaces the signature with one under another secret.
func forge(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	m := hmac.New(sha256.New, []byte("attacker secret"))
	m.Write([]byte(tok[:i]))
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestIssueFormat(t *testing.T) {
	tk := newTestTokens(t)
	s := issueTest(t, tk, ScopeAppPass)

	decode := func(tok string, i int) map[string]any {
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
	if h := decode(s.AccessJwt, 0); h["alg"] != "HS256" || h["typ"] != "at+jwt" || len(h) != 2 {
		t.Errorf("access header %v", h)
	}
	if h := decode(s.RefreshJwt, 0); h["alg"] != "HS256" || h["typ"] != "refresh+jwt" || len(h) != 2 {
		t.Errorf("refresh header %v", h)
	}
	a := decode(s.AccessJwt, 1)
	want := map[string]any{
		"scope": "com.atproto.appPass", "aud": string(testService), "sub": string(testDID),
		"jti": s.AccessID, "iat": float64(testIat.Unix()), "exp": float64(testIat.Add(120 * time.Minute).Unix()),
	}
	if len(a) != len(want) {
		t.Errorf("access claims %v, want %v", a, want)
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("access %s = %v, want %v", k, a[k], v)
		}
	}
	r := decode(s.RefreshJwt, 1)
	want = map[string]any{
		"scope": "com.atproto.refresh", "aud": string(testService), "sub": string(testDID),
		"jti": testSID, "iat": float64(testIat.Unix()), "exp": float64(testIat.Add(90 * 24 * time.Hour).Unix()),
	}
	if len(r) != len(want) {
		t.Errorf("refresh claims %v, want %v", r, want)
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("refresh %s = %v, want %v", k, r[k], v)
		}
	}
	if len(s.AccessID) != 22 {
		t.Errorf("access jti %q", s.AccessID)
	}
	if !s.AccessExpiresAt.Equal(testIat.Add(AccessTokenTTL)) || !s.RefreshExpiresAt.Equal(testIat.Add(RefreshTokenTTL)) {
		t.Errorf("expiries %v %v", s.AccessExpiresAt, s.RefreshExpiresAt)
	}
}

func TestIssueDeterministic(t *testing.T) {
	tk := newTestTokens(t)
	p := SessionParams{DID: testDID, SessionID: testSID, Scope: ScopeAccess, IssuedAt: testIat.Add(300 * time.Millisecond)}
	a, err := tk.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	// another Tokens with the same secret, and the same second
	tk2 := newTestTokens(t)
	p.IssuedAt = testIat.Add(900 * time.Millisecond).In(time.FixedZone("x", 3600))
	b, err := tk2.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("re-issue differs:\n%+v\n%+v", a, b)
	}
	// every input matters
	for name, q := range map[string]SessionParams{
		"did":   {DID: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", SessionID: testSID, Scope: ScopeAccess, IssuedAt: testIat},
		"sid":   {DID: testDID, SessionID: NewSessionID(), Scope: ScopeAccess, IssuedAt: testIat},
		"scope": {DID: testDID, SessionID: testSID, Scope: ScopeAppPass, IssuedAt: testIat},
		"iat":   {DID: testDID, SessionID: testSID, Scope: ScopeAccess, IssuedAt: testIat.Add(time.Second)},
	} {
		c, err := tk.Issue(q)
		if err != nil {
			t.Fatal(err)
		}
		if c.AccessJwt == a.AccessJwt || c.AccessID == a.AccessID {
			t.Errorf("%s: access token unchanged", name)
		}
	}
	// the jti depends on the secret
	other, _ := NewTokens([]byte("another secret"), testService)
	if other.AccessTokenID(p) == tk.AccessTokenID(p) {
		t.Error("access jti independent of the secret")
	}
}

func TestIssueRefusesBadParams(t *testing.T) {
	tk := newTestTokens(t)
	good := SessionParams{DID: testDID, SessionID: testSID, Scope: ScopeAccess, IssuedAt: testIat}
	for name, mut := range map[string]func(*SessionParams){
		"bad did":       func(p *SessionParams) { p.DID = "plc:nope" },
		"empty sid":     func(p *SessionParams) { p.SessionID = "" },
		"sid with nul":  func(p *SessionParams) { p.SessionID = "a\x00b" },
		"long sid":      func(p *SessionParams) { p.SessionID = strings.Repeat("a", 129) },
		"no scope":      func(p *SessionParams) { p.Scope = "" },
		"refresh scope": func(p *SessionParams) { p.Scope = ScopeRefresh },
		"unknown scope": func(p *SessionParams) { p.Scope = "com.atproto.root" },
		"zero iat":      func(p *SessionParams) { p.IssuedAt = time.Time{} },
		"epoch iat":     func(p *SessionParams) { p.IssuedAt = time.Unix(0, 0) },
	} {
		p := good
		mut(&p)
		if _, err := tk.Issue(p); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if _, err := NewTokens(nil, testService); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := NewTokens(testSecret, "example.com"); err == nil {
		t.Error("bad service DID accepted")
	}
}

func TestVerifyAccepts(t *testing.T) {
	tk := newTestTokens(t)
	for _, scope := range []Scope{ScopeAccess, ScopeAppPass, ScopeAppPassPrivileged, ScopeTakendown} {
		s := issueTest(t, tk, scope)
		c, err := tk.VerifyAccess(s.AccessJwt, testIat.Add(time.Minute))
		if err != nil {
			t.Fatalf("%s: %v", scope, err)
		}
		want := Claims{DID: testDID, Scope: scope, TokenID: s.AccessID, IssuedAt: testIat, ExpiresAt: testIat.Add(AccessTokenTTL)}
		if c != want {
			t.Errorf("access claims %+v, want %+v", c, want)
		}
		r, err := tk.VerifyRefresh(s.RefreshJwt, testIat.Add(80*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want = Claims{DID: testDID, Scope: ScopeRefresh, SessionID: testSID, TokenID: testSID, IssuedAt: testIat, ExpiresAt: testIat.Add(RefreshTokenTTL)}
		if r != want {
			t.Errorf("refresh claims %+v, want %+v", r, want)
		}
	}
	// crafted independently of golang-jwt, and the leeway at both ends
	tok := craft(hdrAccess, accessPayload(), testSecret)
	for _, now := range []time.Time{testIat.Add(-ClockLeeway), testIat.Add(AccessTokenTTL + ClockLeeway - time.Second)} {
		if _, err := tk.VerifyAccess(tok, now); err != nil {
			t.Errorf("at %v: %v", now, err)
		}
	}
	// an access token without jti (the reference's shape) is fine
	if _, err := tk.VerifyAccess(craft(hdrAccess, with(accessPayload(), "jti", nil), testSecret), testIat); err != nil {
		t.Error(err)
	}
	// deleteSession accepts an expired refresh token
	s := issueTest(t, tk, ScopeAccess)
	if _, err := tk.VerifyRefreshAllowExpired(s.RefreshJwt, testIat.Add(365*24*time.Hour)); err != nil {
		t.Error(err)
	}
}

// TestVerifyRefuses is the table of refusals: each case names the token,
// the verifier and the sentinel it must wrap.
func TestVerifyRefuses(t *testing.T) {
	tk := newTestTokens(t)
	s := issueTest(t, tk, ScopeAppPass)
	now := testIat.Add(time.Minute)
	other, _ := NewTokens([]byte("a different secret"), testService)
	otherAud, _ := NewTokens(testSecret, "did:web:other.example.com")

	const access, refresh, refreshAnyExp = "access", "refresh", "refresh(allowExpired)"
	cases := []struct {
		name  string
		token string
		as    string
		tk    *Tokens
		now   time.Time
		want  error
	}{
		{"forged signature", forge(s.AccessJwt), access, tk, now, ErrInvalidToken},
		{"forged refresh signature", forge(s.RefreshJwt), refresh, tk, now, ErrInvalidToken},
		{"forged refresh, expiry ignored", forge(s.RefreshJwt), refreshAnyExp, tk, now, ErrInvalidToken},
		{"wrong secret", s.AccessJwt, access, other, now, ErrInvalidToken},
		{"wrong secret refresh", s.RefreshJwt, refresh, other, now, ErrInvalidToken},
		{"tampered payload", tamperPayload(s.AccessJwt), access, tk, now, ErrInvalidToken},
		{"truncated signature", s.AccessJwt[:len(s.AccessJwt)-2], access, tk, now, ErrInvalidToken},
		{"expired access", s.AccessJwt, access, tk, testIat.Add(AccessTokenTTL + ClockLeeway), ErrExpiredToken},
		{"expired refresh", s.RefreshJwt, refresh, tk, testIat.Add(RefreshTokenTTL + time.Hour), ErrExpiredToken},
		{"refresh as access", s.RefreshJwt, access, tk, now, ErrInvalidToken},
		{"access as refresh", s.AccessJwt, refresh, tk, now, ErrInvalidToken},
		{"access as refresh, expiry ignored", s.AccessJwt, refreshAnyExp, tk, now, ErrInvalidToken},
		{"expired refresh as access", s.RefreshJwt, access, tk, testIat.Add(RefreshTokenTTL + time.Hour), ErrInvalidToken},
		{"wrong aud", s.AccessJwt, access, otherAud, now, ErrInvalidToken},
		{"wrong aud refresh", s.RefreshJwt, refresh, otherAud, now, ErrInvalidToken},
		{"alg none", craft(map[string]any{"alg": "none", "typ": "at+jwt"}, accessPayload(), nil), access, tk, now, ErrInvalidToken},
		{"alg none with sig", craft(map[string]any{"alg": "none", "typ": "at+jwt"}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"alg NONE", craft(map[string]any{"alg": "NONE", "typ": "at+jwt"}, accessPayload(), nil), access, tk, now, ErrInvalidToken},
		{"alg HS512", craft(map[string]any{"alg": "HS512", "typ": "at+jwt"}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"alg RS256", craft(map[string]any{"alg": "RS256", "typ": "at+jwt"}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"alg ES256K", craft(map[string]any{"alg": "ES256K", "typ": "at+jwt"}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"no alg", craft(map[string]any{"typ": "at+jwt"}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"missing typ", craft(map[string]any{"alg": "HS256"}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"typ JWT", craft(map[string]any{"alg": "HS256", "typ": "JWT"}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"typ dpop+jwt", craft(map[string]any{"alg": "HS256", "typ": "dpop+jwt"}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"typ not a string", craft(map[string]any{"alg": "HS256", "typ": 1}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"crit header", craft(map[string]any{"alg": "HS256", "typ": "at+jwt", "crit": []string{"x"}}, accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"refresh typ, access scope", craft(hdrRefresh, with(accessPayload(), "jti", testSID), testSecret), refresh, tk, now, ErrInvalidToken},
		{"access typ, refresh scope", craft(hdrAccess, refreshPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"unknown scope", craft(hdrAccess, with(accessPayload(), "scope", "com.atproto.admin"), testSecret), access, tk, now, ErrInvalidToken},
		{"missing scope", craft(hdrAccess, with(accessPayload(), "scope", nil), testSecret), access, tk, now, ErrInvalidToken},
		{"scope not a string", craft(hdrAccess, with(accessPayload(), "scope", []string{"com.atproto.access"}), testSecret), access, tk, now, ErrInvalidToken},
		{"refresh without jti", craft(hdrRefresh, with(refreshPayload(), "jti", nil), testSecret), refresh, tk, now, ErrInvalidToken},
		{"sub not a DID", craft(hdrAccess, with(accessPayload(), "sub", "alice.example.com"), testSecret), access, tk, now, ErrInvalidToken},
		{"missing sub", craft(hdrAccess, with(accessPayload(), "sub", nil), testSecret), access, tk, now, ErrInvalidToken},
		{"aud array", craft(hdrAccess, with(accessPayload(), "aud", []string{string(testService)}), testSecret), access, tk, now, ErrInvalidToken},
		{"missing aud", craft(hdrAccess, with(accessPayload(), "aud", nil), testSecret), access, tk, now, ErrInvalidToken},
		{"missing exp", craft(hdrAccess, with(accessPayload(), "exp", nil), testSecret), access, tk, now, ErrInvalidToken},
		{"missing iat", craft(hdrAccess, with(accessPayload(), "iat", nil), testSecret), access, tk, now, ErrInvalidToken},
		{"exp not a number", craft(hdrAccess, with(accessPayload(), "exp", "soon"), testSecret), access, tk, now, ErrInvalidToken},
		{"fractional exp", craft(hdrAccess, with(accessPayload(), "exp", 1.5e9+0.5), testSecret), access, tk, now, ErrInvalidToken},
		{"issued in the future", s.AccessJwt, access, tk, testIat.Add(-time.Minute), ErrInvalidToken},
		{"not yet valid", craft(hdrAccess, with(accessPayload(), "nbf", now.Add(time.Hour).Unix()), testSecret), access, tk, now, ErrInvalidToken},
		{"service auth lxm", craft(hdrAccess, with(accessPayload(), "lxm", "com.atproto.repo.createRecord"), testSecret), access, tk, now, ErrInvalidToken},
		{"proof of possession cnf", craft(hdrAccess, with(accessPayload(), "cnf", map[string]string{"jkt": "x"}), testSecret), access, tk, now, ErrInvalidToken},
		{"payload not JSON", craft(hdrAccess, "not json", testSecret), access, tk, now, ErrInvalidToken},
		{"payload JSON array", craft(hdrAccess, "[1,2]", testSecret), access, tk, now, ErrInvalidToken},
		{"header not JSON", craft("{", accessPayload(), testSecret), access, tk, now, ErrInvalidToken},
		{"two segments", strings.Join(strings.Split(s.AccessJwt, ".")[:2], "."), access, tk, now, ErrInvalidToken},
		{"four segments", s.AccessJwt + ".x", access, tk, now, ErrInvalidToken},
		{"padded base64", strings.Replace(s.AccessJwt, ".", "=.", 1), access, tk, now, ErrInvalidToken},
		{"empty", "", access, tk, now, ErrInvalidToken},
		{"garbage", "not.a.jwt", access, tk, now, ErrInvalidToken},
		{"too long", s.AccessJwt + strings.Repeat("A", MaxTokenLength), access, tk, now, ErrInvalidToken},
		{"bearer prefix left on", "Bearer " + s.AccessJwt, access, tk, now, ErrInvalidToken},
	}
	// A non-canonical last signature character (same bytes under lenient
	// decoding) must not verify: one token, one encoding.
	sig := s.AccessJwt[strings.LastIndexByte(s.AccessJwt, '.')+1:]
	last := sig[len(sig)-1]
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	idx := strings.IndexByte(alphabet, last)
	// a 32-byte signature is 43 chars: the last one carries 4 bits, 2 spare
	if alt := alphabet[idx^1]; alt != last {
		cases = append(cases, struct {
			name  string
			token string
			as    string
			tk    *Tokens
			now   time.Time
			want  error
		}{"non-canonical signature encoding", s.AccessJwt[:len(s.AccessJwt)-1] + string(alt), access, tk, now, ErrInvalidToken})
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			switch c.as {
			case access:
				_, err = c.tk.VerifyAccess(c.token, c.now)
			case refresh:
				_, err = c.tk.VerifyRefresh(c.token, c.now)
			case refreshAnyExp:
				_, err = c.tk.VerifyRefreshAllowExpired(c.token, c.now)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.want == ErrInvalidToken && errors.Is(err, ErrExpiredToken) {
				t.Fatalf("err = %v is also ExpiredToken", err)
			}
			if !strings.HasPrefix(err.Error(), "auth: ") {
				t.Errorf("error %q lacks the auth: prefix", err)
			}
		})
	}
}

func TestVerifyAccessFor(t *testing.T) {
	tk := newTestTokens(t)
	now := testIat.Add(time.Minute)
	app := issueTest(t, tk, ScopeAppPass)
	if _, err := tk.VerifyAccessFor(app.AccessJwt, "com.atproto.repo.createRecord", now); err != nil {
		t.Error(err)
	}
	for _, m := range []string{"com.atproto.server.createAppPassword", "chat.bsky.convo.sendMessage"} {
		if _, err := tk.VerifyAccessFor(app.AccessJwt, m, now); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("appPass calling %s: %v", m, err)
		}
	}
	full := issueTest(t, tk, ScopeAccess)
	if _, err := tk.VerifyAccessFor(full.AccessJwt, "com.atproto.server.createAppPassword", now); err != nil {
		t.Error(err)
	}
	if _, err := tk.VerifyAccessFor(full.AccessJwt, "x.y.z", testIat.Add(AccessTokenTTL+time.Hour)); !errors.Is(err, ErrExpiredToken) {
		t.Error(err)
	}
}

// TestIssueVerifyRoundTrip is the property: for random DIDs, session ids,
// scopes and issue times, whatever Issue produces verifies to exactly its
// inputs at any time within the token's life, and re-issuing is identical.
func TestIssueVerifyRoundTrip(t *testing.T) {
	tk := newTestTokens(t)
	r := rand.New(rand.NewPCG(1, 2))
	const b32 = "abcdefghijklmnopqrstuvwxyz234567"
	scopes := []Scope{ScopeAccess, ScopeAppPass, ScopeAppPassPrivileged, ScopeTakendown, ScopeSignupQueued}
	for i := 0; i < 300; i++ {
		var did syntax.DID
		if r.IntN(2) == 0 {
			b := make([]byte, 24)
			for j := range b {
				b[j] = b32[r.IntN(32)]
			}
			did = syntax.DID("did:plc:" + string(b))
		} else {
			did = syntax.DID("did:web:h" + string(rune('a'+r.IntN(26))) + ".example.com")
		}
		p := SessionParams{
			DID:       did,
			SessionID: NewSessionID(),
			Scope:     scopes[r.IntN(len(scopes))],
			IssuedAt:  time.Unix(1_600_000_000+r.Int64N(400_000_000), r.Int64N(1e9)),
		}
		s, err := tk.Issue(p)
		if err != nil {
			t.Fatal(err)
		}
		iat := time.Unix(p.IssuedAt.Unix(), 0).UTC()
		at := iat.Add(time.Duration(r.Int64N(int64(AccessTokenTTL))))
		c, err := tk.VerifyAccess(s.AccessJwt, at)
		if err != nil {
			t.Fatalf("%+v at %v: %v", p, at, err)
		}
		if c.DID != p.DID || c.Scope != p.Scope || c.SessionID != "" || c.TokenID != tk.AccessTokenID(p) ||
			!c.IssuedAt.Equal(iat) || !c.ExpiresAt.Equal(iat.Add(AccessTokenTTL)) {
			t.Fatalf("access round trip %+v -> %+v", p, c)
		}
		rt := iat.Add(time.Duration(r.Int64N(int64(RefreshTokenTTL))))
		rc, err := tk.VerifyRefresh(s.RefreshJwt, rt)
		if err != nil {
			t.Fatalf("%+v at %v: %v", p, rt, err)
		}
		if rc.DID != p.DID || rc.Scope != ScopeRefresh || rc.SessionID != p.SessionID ||
			!rc.IssuedAt.Equal(iat) || !rc.ExpiresAt.Equal(iat.Add(RefreshTokenTTL)) {
			t.Fatalf("refresh round trip %+v -> %+v", p, rc)
		}
		again, err := tk.Issue(p)
		if err != nil || again != s {
			t.Fatalf("re-issue differs: %v", err)
		}
		// and the kinds never cross
		if _, err := tk.VerifyAccess(s.RefreshJwt, at); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("refresh accepted as access: %v", err)
		}
		if _, err := tk.VerifyRefresh(s.AccessJwt, at); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("access accepted as refresh: %v", err)
		}
	}
}

func TestNewSessionID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := NewSessionID()
		if len(id) != 43 || !validSessionID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	// the reference's ids (standard base64 with padding) are valid too
	if !validSessionID("q1Jd+Z0dTqY/8o0cUwMz0oP4Kq3FJb9I1n4sJm3T2xY=") {
		t.Error("reference-style id refused")
	}
}

func TestXRPCErrorName(t *testing.T) {
	tk := newTestTokens(t)
	s := issueTest(t, tk, ScopeAccess)
	_, expired := tk.VerifyAccess(s.AccessJwt, testIat.Add(AccessTokenTTL+time.Hour))
	_, invalid := tk.VerifyRefresh(s.AccessJwt, testIat)
	for err, want := range map[error]string{
		expired:                 "ExpiredToken",
		invalid:                 "InvalidToken",
		ErrBadExpiration:        "BadExpiration",
		ErrPasswordTooLong:      "InvalidRequest",
		ErrMalformedHash:        "",
		errors.New("something"): "",
		ErrInvalidRequest:       "InvalidRequest",
		CheckNewPassword(""):    "InvalidRequest",
		ScopeAppPass.CheckMethod("com.atproto.server.updateEmail"): "InvalidToken",
	} {
		if got := XRPCErrorName(err); got != want {
			t.Errorf("XRPCErrorName(%v) = %q, want %q", err, got, want)
		}
	}
}

func BenchmarkVerifyAccess(b *testing.B) {
	tk := newTestTokens(b)
	s := issueTest(b, tk, ScopeAccess)
	now := testIat.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.VerifyAccess(s.AccessJwt, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	tk := newTestTokens(b)
	p := SessionParams{DID: testDID, SessionID: testSID, Scope: ScopeAccess, IssuedAt: testIat}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Issue(p); err != nil {
			b.Fatal(err)
		}
	}
}
