package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"
)

// Service-auth limits (getServiceAuth.ts; createServiceJwt in
// @atproto/xrpc-server auth.ts).
const (
	// ServiceAuthDefaultTTL is the lifetime of a token requested without
	// exp.
	ServiceAuthDefaultTTL = time.Minute
	// ServiceAuthMaxTTL bounds a requested exp.
	ServiceAuthMaxTTL = time.Hour
	// ServiceAuthMaxTTLNoLxm bounds a requested exp without lxm.
	ServiceAuthMaxTTLNoLxm = time.Minute
)

// The JOSE algorithms of atproto service auth.
const (
	AlgES256K = "ES256K" // secp256k1 (K-256)
	AlgES256  = "ES256"  // NIST P-256
)

// atprotoMethod is a jwt.SigningMethod over atcrypto keys: SHA-256 then
// ECDSA, the signature the raw 64-byte r‖s, low-S when signing (atcrypto
// guarantees it). It is deliberately not registered with golang-jwt
// (indigo's atproto/auth registers its own under the same names).
type atprotoMethod struct{ alg string }

func (m atprotoMethod) Alg() string { return m.alg }

func (m atprotoMethod) Sign(signingString string, key any) ([]byte, error) {
	priv, ok := key.(atcrypto.PrivateKey)
	if !ok {
		return nil, jwt.ErrInvalidKeyType
	}
	sig, err := priv.HashAndSign([]byte(signingString))
	if err != nil {
		return nil, err
	}
	if len(sig) != 64 {
		return nil, fmt.Errorf("auth: %s signature of %d bytes, want 64", m.alg, len(sig))
	}
	return sig, nil
}

func (m atprotoMethod) Verify(signingString string, sig []byte, key any) error {
	pub, ok := key.(atcrypto.PublicKey)
	if !ok {
		return jwt.ErrInvalidKeyType
	}
	if len(sig) != 64 {
		return jwt.ErrTokenSignatureInvalid
	}
	return pub.HashAndVerifyLenient([]byte(signingString), sig)
}

// ServiceAlg is the JOSE alg of service-auth tokens signed by key: ES256K
// for K-256, ES256 for P-256. Keys of other types are judged by their
// public key, so wrappers (an HSM signer, say) work.
func ServiceAlg(key atcrypto.PrivateKey) (string, error) {
	switch key.(type) {
	case *atcrypto.PrivateKeyK256:
		return AlgES256K, nil
	case *atcrypto.PrivateKeyP256:
		return AlgES256, nil
	case nil:
		return "", errors.New("auth: nil signing key")
	}
	pub, err := key.PublicKey()
	if err != nil {
		return "", fmt.Errorf("auth: signing key: %w", err)
	}
	switch pub.(type) {
	case *atcrypto.PublicKeyK256:
		return AlgES256K, nil
	case *atcrypto.PublicKeyP256:
		return AlgES256, nil
	}
	return "", fmt.Errorf("auth: unsupported signing key type %T", key)
}

// serviceClaims is the payload of a service-auth token, in the
// reference's field order.
type serviceClaims struct {
	Iat int64  `json:"iat"`
	Iss string `json:"iss"`
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Lxm string `json:"lxm,omitempty"`
	Jti string `json:"jti"`
}

func (c *serviceClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.Exp, 0)), nil
}
func (c *serviceClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.Iat, 0)), nil
}
func (c *serviceClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *serviceClaims) GetIssuer() (string, error)              { return c.Iss, nil }
func (c *serviceClaims) GetSubject() (string, error)             { return "", nil }
func (c *serviceClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Aud}, nil
}

// ServiceJWT signs an inter-service auth token (createServiceJwt): header
// {"alg":"ES256K"|"ES256","typ":"JWT"}; claims iat (now), iss, aud, exp,
// lxm (omitted when ""), jti (16 random bytes, hex); signature the raw
// 64-byte low-S r‖s, base64url. A zero exp means iat + 1 minute (the
// reference's default). aud is a DID or DID#service reference; lxm, when
// set, an NSID. exp is not judged here: getServiceAuth checks a requested
// one with CheckServiceAuthRequest first.
//
// indigo's atproto/auth ServiceAuthValidator accepts these tokens (see the
// tests).
func ServiceJWT(key atcrypto.PrivateKey, iss syntax.DID, aud string, lxm string, exp time.Time) (string, error) {
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	return signServiceJWT(key, iss, aud, lxm, time.Now(), exp, hex.EncodeToString(jti[:]))
}

func signServiceJWT(key atcrypto.PrivateKey, iss syntax.DID, aud, lxm string, now, exp time.Time, jti string) (string, error) {
	alg, err := ServiceAlg(key)
	if err != nil {
		return "", err
	}
	if _, err := syntax.ParseDID(string(iss)); err != nil {
		return "", fmt.Errorf("%w: iss: %v", ErrInvalidRequest, err)
	}
	if !validDIDOrRef(aud, false) {
		return "", fmt.Errorf("%w: aud %q is not a DID or DID#service reference", ErrInvalidRequest, aud)
	}
	if lxm != "" {
		if _, err := syntax.ParseNSID(lxm); err != nil {
			return "", fmt.Errorf("%w: lxm: %v", ErrInvalidRequest, err)
		}
	}
	iat := now.Unix()
	if exp.IsZero() {
		exp = time.Unix(iat, 0).Add(ServiceAuthDefaultTTL)
	}
	c := &serviceClaims{Iat: iat, Iss: string(iss), Aud: aud, Exp: exp.Unix(), Lxm: lxm, Jti: jti}
	tok := jwt.NewWithClaims(atprotoMethod{alg: alg}, c)
	s, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: signing service JWT: %w", err)
	}
	return s, nil
}

// validDIDOrRef reports whether s is a DID, or a DID#fragment reference;
// atproto further restricts the DID to the atproto methods (did:plc and
// did:web without path or port).
func validDIDOrRef(s string, atproto bool) bool {
	did, frag, hasFrag := strings.Cut(s, "#")
	if hasFrag && (frag == "" || strings.ContainsAny(frag, "# \t\r\n")) {
		return false
	}
	if atproto {
		return IsAtprotoDID(did)
	}
	_, err := syntax.ParseDID(did)
	return err == nil
}

// IsAtprotoDID reports whether s is a DID of an atproto method
// (@atproto/did isAtprotoDid): did:plc with 24 base32 characters, or
// did:web of a host with neither path nor (except for localhost) port.
func IsAtprotoDID(s string) bool {
	if rest, ok := strings.CutPrefix(s, "did:plc:"); ok {
		if len(rest) != 24 {
			return false
		}
		for i := 0; i < len(rest); i++ {
			if c := rest[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
				return false
			}
		}
		return true
	}
	rest, ok := strings.CutPrefix(s, "did:web:")
	if !ok || rest == "" {
		return false
	}
	if _, err := syntax.ParseDID(s); err != nil {
		return false
	}
	if strings.Contains(rest, ":") { // a path
		return false
	}
	if strings.Contains(strings.ToUpper(rest), "%3A") && !strings.HasPrefix(rest, "localhost%3A") && !strings.HasPrefix(rest, "localhost%3a") {
		return false // a port, allowed for localhost only
	}
	return true
}

// CheckServiceAuthExp judges the exp requested of getServiceAuth at time
// now (the reference's rules): not in the past, at most ServiceAuthMaxTTL
// ahead, and at most ServiceAuthMaxTTLNoLxm ahead when no lxm is given.
// Errors wrap ErrBadExpiration. A zero exp (none requested) passes.
func CheckServiceAuthExp(exp time.Time, lxm string, now time.Time) error {
	if exp.IsZero() {
		return nil
	}
	diff := exp.Sub(now)
	switch {
	case diff < 0:
		return fmt.Errorf("%w: expiration is in past", ErrBadExpiration)
	case diff > ServiceAuthMaxTTL:
		return fmt.Errorf("%w: cannot request a token with an expiration more than an hour in the future", ErrBadExpiration)
	case lxm == "" && diff > ServiceAuthMaxTTLNoLxm:
		return fmt.Errorf("%w: cannot request a method-less token with an expiration more than a minute in the future", ErrBadExpiration)
	}
	return nil
}

const lxmCreateAccount = "com.atproto.server.createAccount"

// CheckServiceAuthRequest applies getServiceAuth's rules to a request by a
// session of the given scope, for audience aud, method lxm ("" for none)
// and requested exp (zero for none), at time now, in the reference's
// order:
//
//  1. the scope may call getServiceAuth (standard scopes and takendown),
//     else ErrInvalidToken;
//  2. aud is an atproto DID or DID#service reference, else
//     ErrInvalidRequest;
//  3. a takendown session may only ask for lxm
//     com.atproto.server.createAccount (account migration), else
//     ErrInvalidToken ("Bad token scope");
//  4. a privileged lxm (IsPrivilegedMethod) needs a privileged scope, else
//     ErrInvalidRequest;
//  5. CheckServiceAuthExp;
//  6. a protected lxm (IsProtectedMethod) is refused, ErrInvalidRequest.
func CheckServiceAuthRequest(scope Scope, aud, lxm string, exp, now time.Time) error {
	if err := scope.CheckMethod("com.atproto.server.getServiceAuth"); err != nil {
		return err
	}
	if !validDIDOrRef(aud, true) {
		return fmt.Errorf("%w: aud must be a valid atproto DID or did#serviceId reference", ErrInvalidRequest)
	}
	if scope == ScopeTakendown && lxm != lxmCreateAccount {
		return fmt.Errorf("%w: bad token scope", ErrInvalidToken)
	}
	if lxm != "" && IsPrivilegedMethod(lxm) && !scope.IsPrivileged() && scope != ScopeTakendown {
		return fmt.Errorf("%w: insufficient access to request a service auth token for the following method: %s", ErrInvalidRequest, lxm)
	}
	if err := CheckServiceAuthExp(exp, lxm, now); err != nil {
		return err
	}
	if lxm != "" && IsProtectedMethod(lxm) {
		return fmt.Errorf("%w: cannot request a service auth token for the following protected method: %s", ErrInvalidRequest, lxm)
	}
	return nil
}
