package oauthtest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/pds/oauthcore"
	"github.com/pdslog/pdslog/eventlog/events"
)

// Token is an OAuth session opened straight on the write side's log, for
// tests of what a token may call (the authorization server that normally
// opens sessions is tested end to end elsewhere): its access token, bound
// to Key, and the nonce the server last handed out.
type Token struct {
	Access string
	Key    *atcrypto.PrivateKeyP256
	Nonce  string
	n      int
}

// MintToken opens a session of scope for did on env and signs its access
// token with the server's signer.
func MintToken(t testing.TB, env *apitest.Env, did syntax.DID, scope string) *Token {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey()
	jwk, _ := pub.JWK()
	jkt := (&oauthcore.JWK{Kty: jwk.KeyType, Crv: jwk.Curve, X: jwk.X, Y: jwk.Y}).Thumbprint()
	now := time.Now().UTC()
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	id := oauthcore.NewID(oauthcore.PrefixSession)
	s := &events.OAuthSession{ID: id, ClientID: "https://app.example.com/oauth-client-metadata.json", ClientAuth: events.OAuthClientAuth{Method: "none"},
		Scope: scope, DPoPJKT: jkt, RefreshHash: oauthcore.Hash(id), TokenID: oauthcore.NewID(oauthcore.PrefixToken),
		CreatedAt: ts(0), ExpiresAt: ts(time.Hour), SessionExpiresAt: ts(time.Hour)}
	seq, err := env.Log.Append(t.Context(), events.Must(did, s))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Runner.CatchUp(t.Context(), seq); err != nil {
		t.Fatal(err)
	}
	c := oauthcore.AccessClaims{Subject: did.String(), ClientID: s.ClientID, Scope: scope, JTI: s.TokenID, SessionID: s.ID,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
	c.Cnf.JKT = jkt
	tok, err := env.PDS.OAuthSigner().Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return &Token{Access: tok, Key: key}
}

// Proof is a DPoP proof for method and htu (the server's public URL and
// path) bound to the access token, with the last nonce.
func (tk *Token) Proof(t testing.TB, method, htu string) string {
	t.Helper()
	pub, _ := tk.Key.PublicKey()
	jwk, _ := pub.JWK()
	sum := sha256.Sum256([]byte(tk.Access))
	tk.n++
	claims := jwt.MapClaims{"jti": fmt.Sprintf("%d-%d", time.Now().UnixNano(), tk.n), "htm": method, "htu": htu, "iat": time.Now().Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:])}
	if tk.Nonce != "" {
		claims["nonce"] = tk.Nonce
	}
	j := jwt.NewWithClaims(jwt.GetSigningMethod("ES256"), claims)
	j.Header["typ"] = "dpop+jwt"
	j.Header["jwk"] = jwk
	s, err := j.SignedString(tk.Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Call makes an XRPC call on env with the token (path with its query),
// fetching a nonce first if need be; headers are extra name, value pairs.
func (tk *Token) Call(t testing.TB, env *apitest.Env, method, path string, body any, headers ...string) *apitest.Response {
	t.Helper()
	base := env.PDS.OAuthIssuer()
	for i := 0; ; i++ {
		htu := base + path
		if q := indexByte(path, '?'); q >= 0 {
			htu = base + path[:q]
		}
		hs := append([]string{"Authorization", "DPoP " + tk.Access, "DPoP", tk.Proof(t, method, htu)}, headers...)
		r := env.Request(method, path, nil, "", body, hs...)
		if n := r.Header.Get("DPoP-Nonce"); n != "" {
			tk.Nonce = n
		}
		if r.ErrorName() == "use_dpop_nonce" && i == 0 {
			continue
		}
		return r
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
