package oauthcore

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"
)

// JWK is the public part of an EC P-256 JSON Web Key, the only key type
// atproto OAuth uses (ES256) for DPoP and client assertions.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d,omitempty"` // refused: a private key
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// PublicKey returns the key, checked to be a point of P-256.
func (k *JWK) PublicKey() (*ecdsa.PublicKey, error) {
	if k.Kty != "EC" || k.Crv != "P-256" {
		return nil, fmt.Errorf("key type %s/%s: only EC P-256 (ES256) is supported", k.Kty, k.Crv)
	}
	if k.D != "" {
		return nil, errors.New("the key is a private key")
	}
	x, y, err := k.coordinates()
	if err != nil {
		return nil, err
	}
	raw := append(append([]byte{4}, x...), y...)
	if _, err := ecdh.P256().NewPublicKey(raw); err != nil {
		return nil, errors.New("not a point of P-256")
	}
	return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
}

// coordinates are the key's x and y, 32 bytes each. RFC 7518 wants them
// at full length, but indigo's client drops leading zero bytes (one key in
// 128 has a short coordinate): shorter ones are padded rather than
// refused, so such clients are not turned away at random.
func (k *JWK) coordinates() (x, y []byte, err error) {
	x, err1 := base64.RawURLEncoding.DecodeString(k.X)
	y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
	if err1 != nil || err2 != nil || len(x) == 0 || len(y) == 0 || len(x) > 32 || len(y) > 32 {
		return nil, nil, errors.New("malformed EC coordinates")
	}
	pad := func(b []byte) []byte { return append(make([]byte, 32-len(b)), b...) }
	return pad(x), pad(y), nil
}

// Thumbprint is the key's JWK SHA-256 thumbprint (RFC 7638), base64url: a
// DPoP key's "jkt".
func (k *JWK) Thumbprint() string {
	// RFC 7638: the required members in lexicographic order, no spaces.
	s := fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q,"y":%q}`, k.Crv, k.Kty, k.X, k.Y)
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Proof is a verified DPoP proof.
type Proof struct {
	JTI   string
	JKT   string // thumbprint of the proof's key
	HTM   string
	HTU   string
	Nonce string
	IAT   time.Time
}

type proofClaims struct {
	JTI   string       `json:"jti"`
	HTM   string       `json:"htm"`
	HTU   string       `json:"htu"`
	IAT   *json.Number `json:"iat"`
	Exp   *json.Number `json:"exp,omitempty"`
	ATH   *string      `json:"ath,omitempty"`
	Nonce *string      `json:"nonce,omitempty"`
}

// MaxProofLength bounds a DPoP header.
const MaxProofLength = 4 << 10

// NormalizeHTU is the form an htu is compared in (RFC 9449 §4.3): the URL
// without query and fragment, scheme and host lower-cased, default port
// dropped.
func NormalizeHTU(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("htu must be an http or https URL")
	}
	if u.User != nil {
		return "", errors.New("htu must not contain credentials")
	}
	host := strings.ToLower(u.Host)
	if (u.Scheme == "https" && strings.HasSuffix(host, ":443")) || (u.Scheme == "http" && strings.HasSuffix(host, ":80")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return strings.ToLower(u.Scheme) + "://" + host + path, nil
}

// ProofCheck is what a proof must match.
type ProofCheck struct {
	Method string // the request's method (htm)
	URL    string // the request's URL as the client addressed it (htu)
	// AccessToken, for a resource server request, is the token the proof
	// must be bound to (ath); "" at the authorization server, where a
	// proof must carry no ath.
	AccessToken string
	Nonces      *Nonces
	Now         time.Time
}

// VerifyProof verifies a DPoP header value. Errors are *Error:
// invalid_dpop_proof, or use_dpop_nonce with the nonce to use (a missing
// or stale nonce).
func VerifyProof(header string, c ProofCheck) (*Proof, error) {
	if header == "" {
		return nil, InvalidDPoPProof("DPoP proof required")
	}
	if len(header) > MaxProofLength {
		return nil, InvalidDPoPProof("DPoP proof too long")
	}
	var claims proofClaims
	hdr, payload, jwk, err := verifyES256(header, func(hdr map[string]any) (*JWK, error) {
		if typ, _ := hdr["typ"].(string); typ != "dpop+jwt" {
			return nil, fmt.Errorf(`typ %v, want "dpop+jwt"`, hdr["typ"])
		}
		raw, err := json.Marshal(hdr["jwk"])
		if err != nil || hdr["jwk"] == nil {
			return nil, errors.New("no jwk header")
		}
		var k JWK
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, errors.New("malformed jwk header")
		}
		return &k, nil
	})
	if err != nil {
		return nil, InvalidDPoPProof("Failed to verify DPoP proof: %v", err)
	}
	_ = hdr
	if err := decodeClaims(payload, &claims); err != nil {
		return nil, InvalidDPoPProof("Failed to verify DPoP proof: malformed claims")
	}
	if claims.JTI == "" || len(claims.JTI) > 256 {
		return nil, InvalidDPoPProof(`DPoP "jti" missing`)
	}
	if claims.HTM == "" || claims.HTM != c.Method {
		return nil, InvalidDPoPProof(`DPoP "htm" mismatch`)
	}
	got, err := NormalizeHTU(claims.HTU)
	if err != nil {
		return nil, InvalidDPoPProof(`Invalid DPoP "htu": %v`, err)
	}
	want, err := NormalizeHTU(c.URL)
	if err != nil || got != want {
		return nil, InvalidDPoPProof(`DPoP "htu" mismatch`)
	}
	if claims.IAT == nil {
		return nil, InvalidDPoPProof(`DPoP "iat" missing`)
	}
	iatSec, err := claims.IAT.Float64()
	if err != nil {
		return nil, InvalidDPoPProof(`DPoP "iat" malformed`)
	}
	iat := time.Unix(int64(iatSec), 0)
	if iat.After(c.Now.Add(NonceMaxAge)) || iat.Before(c.Now.Add(-NonceMaxAge-ProofMaxAge)) {
		return nil, InvalidDPoPProof(`DPoP proof "iat" is too far from the server's clock`)
	}
	if claims.Exp != nil {
		if exp, err := claims.Exp.Float64(); err != nil || time.Unix(int64(exp), 0).Before(c.Now.Add(-NonceMaxAge)) {
			return nil, InvalidDPoPProof("DPoP proof has expired")
		}
	}
	if c.AccessToken != "" {
		sum := sha256.Sum256([]byte(c.AccessToken))
		if claims.ATH == nil || subtle.ConstantTimeCompare([]byte(*claims.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return nil, InvalidDPoPProof(`DPoP "ath" mismatch`)
		}
	} else if claims.ATH != nil {
		return nil, InvalidDPoPProof(`DPoP "ath" claim not allowed`)
	}
	nonce := ""
	if claims.Nonce != nil {
		nonce = *claims.Nonce
	}
	if c.Nonces != nil {
		if nonce == "" {
			return nil, UseDPoPNonce(c.Nonces.Next(c.Now))
		}
		if !c.Nonces.Check(nonce, c.Now) {
			e := UseDPoPNonce(c.Nonces.Next(c.Now))
			e.Description = `DPoP "nonce" mismatch`
			return nil, e
		}
	}
	return &Proof{JTI: claims.JTI, JKT: jwk.Thumbprint(), HTM: claims.HTM, HTU: claims.HTU, Nonce: nonce, IAT: iat}, nil
}

// Nonces are the server's DPoP nonces: the HMAC of a counter that moves
// every NonceMaxAge/3 under a secret; the previous, current and next are
// accepted. The secret is random per process.
type Nonces struct {
	secret []byte
	step   time.Duration
}

// NewNonces returns nonces under a fresh random secret.
func NewNonces() *Nonces {
	s := make([]byte, 32)
	_, _ = rand.Read(s)
	return &Nonces{secret: s, step: NonceMaxAge / 3}
}

func (n *Nonces) at(counter int64) string {
	m := hmac.New(sha256.New, n.secret)
	_ = binary.Write(m, binary.BigEndian, counter)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func (n *Nonces) counter(now time.Time) int64 { return now.UnixNano() / int64(n.step) }

// Next is the nonce to hand out now (the DPoP-Nonce header).
func (n *Nonces) Next(now time.Time) string { return n.at(n.counter(now)) }

// Check reports whether nonce is one of the accepted nonces at now.
func (n *Nonces) Check(nonce string, now time.Time) bool {
	c := n.counter(now)
	for _, k := range []int64{c - 1, c, c + 1} {
		if hmac.Equal([]byte(n.at(k)), []byte(nonce)) {
			return true
		}
	}
	return false
}

// Replay remembers identifiers (DPoP proof jtis, client assertion jtis)
// for as long as what carries them can be accepted, and refuses them a
// second time. It is bounded: when full of live entries it refuses new
// ones too (failing closed) until some expire.
type Replay struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time
}

// NewReplay returns a cache of at most max live identifiers.
func NewReplay(max int) *Replay { return &Replay{max: max, seen: map[string]time.Time{}} }

// ErrReplayFull is returned by Unique when the cache is full.
var ErrReplayFull = errors.New("oauth: replay cache full")

// Unique records key until expires and reports whether it was new.
func (r *Replay) Unique(key string, expires, now time.Time) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if exp, ok := r.seen[key]; ok && exp.After(now) {
		return false, nil
	}
	if len(r.seen) >= r.max {
		for k, exp := range r.seen {
			if !exp.After(now) {
				delete(r.seen, k)
			}
		}
		if len(r.seen) >= r.max {
			return false, ErrReplayFull
		}
	}
	r.seen[key] = expires
	return true, nil
}

// ProofReplayWindow is how long a DPoP proof's jti is remembered: longer
// than any proof is accepted (its iat window, its nonce's life).
const ProofReplayWindow = 2*NonceMaxAge + ProofMaxAge + time.Minute

// CheckPKCE checks a code_verifier against an S256 code_challenge
// (RFC 7636): 43 to 128 unreserved characters whose SHA-256, base64url,
// is the challenge.
func CheckPKCE(challenge, verifier string) error {
	if verifier == "" {
		return InvalidGrant("code_verifier is required")
	}
	if len(verifier) < 43 || len(verifier) > 128 {
		return InvalidGrant("code_verifier must be 43 to 128 characters")
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return InvalidGrant("code_verifier has characters PKCE does not allow")
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) != 1 {
		return InvalidGrant("Invalid code_verifier")
	}
	return nil
}

// ValidChallenge reports whether s can be an S256 code_challenge: the
// base64url of 32 bytes.
func ValidChallenge(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// NewID returns prefix + 32 random bytes in base64url.
func NewID(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash is the hex SHA-256 under which a bearer secret (code, refresh
// token, device id) is stored.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 64)
	for i, b := range sum {
		out[2*i], out[2*i+1] = hexdigits[b>>4], hexdigits[b&15]
	}
	return string(out)
}
