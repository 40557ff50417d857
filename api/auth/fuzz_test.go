package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerifyToken: the verifiers never panic, whatever the input, and
// every refusal is one of the two token sentinels; nothing but a token we
// signed verifies.
func FuzzVerifyToken(f *testing.F) {
	tk := newTestTokens(f)
	s := issueTest(f, tk, ScopeAppPassPrivileged)
	for _, seed := range []string{
		s.AccessJwt, s.RefreshJwt, forge(s.AccessJwt), tamperPayload(s.AccessJwt),
		"", ".", "..", "...", "a.b.c", "eyJ.eyJ.", "Bearer " + s.AccessJwt,
		craft(map[string]any{"alg": "none", "typ": "at+jwt"}, accessPayload(), nil),
		craft(hdrAccess, accessPayload(), []byte("x")),
		craft(hdrAccess, `{"exp":1e400}`, testSecret),
		craft(hdrAccess, `{"scope":null,"aud":{},"sub":[],"iat":-1,"exp":"x"}`, testSecret),
		craft(`{"alg":"HS256","typ":"at+jwt","alg":"none"}`, accessPayload(), testSecret),
		strings.Repeat("A", 100) + "." + strings.Repeat("B", 100) + "." + strings.Repeat("C", 43),
	} {
		f.Add(seed)
	}
	now := testIat.Add(time.Minute)
	f.Fuzz(func(t *testing.T, token string) {
		a, errA := tk.VerifyAccess(token, now)
		r, errR := tk.VerifyRefresh(token, now)
		_, errX := tk.VerifyRefreshAllowExpired(token, now)
		for _, err := range []error{errA, errR, errX} {
			if err != nil && !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrExpiredToken) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		}
		if errA == nil && (token != s.AccessJwt || a.DID != testDID) {
			t.Fatalf("accepted as access: %q -> %+v", token, a)
		}
		if errR == nil && (token != s.RefreshJwt || r.SessionID != testSID) {
			t.Fatalf("accepted as refresh: %q -> %+v", token, r)
		}
		// the header helpers must not panic either
		_, _, _ = ParseAuthorization(token)
		_ = CheckAdmin(token, "pw")
	})
}
