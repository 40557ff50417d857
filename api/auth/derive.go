package auth

import (
	"crypto/hmac"
	"crypto/sha256"
)

// DeriveKey returns a 32-byte key for another use of the service's secret
// (OAuth access tokens, CSRF tokens): HMAC-SHA256(secret, "pdslog/" +
// label). Keys of different labels are independent, and none is the
// session-token signing key.
func (t *Tokens) DeriveKey(label string) []byte {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte("pdslog/" + label))
	return m.Sum(nil)
}
