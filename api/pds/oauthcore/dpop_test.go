package oauthcore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"testing"
)

// A JWK whose coordinate lost its leading zero byte (as indigo's client
// writes one key in 128) is the same key, not a malformed one; an empty
// or over-long coordinate is refused.
func TestShortCoordinates(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	for i := 0; i < 100000; i++ {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(k.X.Bytes()) == 32 {
			continue
		}
		y := b64(k.Y.FillBytes(make([]byte, 32)))
		full := &JWK{Kty: "EC", Crv: "P-256", X: b64(k.X.FillBytes(make([]byte, 32))), Y: y}
		short := &JWK{Kty: "EC", Crv: "P-256", X: b64(k.X.Bytes()), Y: y}
		k1, err1 := full.PublicKey()
		k2, err2 := short.PublicKey()
		if err1 != nil || err2 != nil || !k1.Equal(k2) || !k1.Equal(&k.PublicKey) {
			t.Fatalf("short coordinate: %v %v", err1, err2)
		}
		for _, bad := range []string{"", b64(make([]byte, 33))} {
			if _, err := (&JWK{Kty: "EC", Crv: "P-256", X: bad, Y: y}).PublicKey(); err == nil {
				t.Errorf("coordinate %q accepted", bad)
			}
		}
		return
	}
	t.Fatal("no key with a short coordinate")
}
