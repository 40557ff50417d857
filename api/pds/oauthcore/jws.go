package oauthcore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// verifyES256 verifies a compact JWS signed with ES256 by the key keyFor
// picks from its header, and returns the header and the payload. It does
// not go through golang-jwt's signing method registry (which indigo
// overrides for ES256); signatures are accepted high-S or low-S, as
// WebCrypto makes them.
func verifyES256(token string, keyFor func(hdr map[string]any) (*JWK, error)) (map[string]any, []byte, *JWK, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, nil, errors.New("not a compact JWS")
	}
	rawHdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, nil, nil, errors.New("malformed header")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, nil, errors.New("malformed payload")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, nil, nil, errors.New("malformed signature")
	}
	var hdr map[string]any
	dec := json.NewDecoder(bytes.NewReader(rawHdr))
	dec.UseNumber()
	if err := dec.Decode(&hdr); err != nil {
		return nil, nil, nil, errors.New("malformed header")
	}
	if alg, _ := hdr["alg"].(string); alg != "ES256" {
		return nil, nil, nil, fmt.Errorf("alg %v: only ES256 is supported", hdr["alg"])
	}
	if _, ok := hdr["crit"]; ok {
		return nil, nil, nil, errors.New("unsupported critical header")
	}
	jwk, err := keyFor(hdr)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := jwk.PublicKey(); err != nil {
		return nil, nil, nil, err
	}
	x, y, _ := jwk.coordinates()
	pub, err := atcrypto.ParsePublicUncompressedBytesP256(append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("key: %w", err)
	}
	if err := pub.HashAndVerifyLenient([]byte(parts[0]+"."+parts[1]), sig); err != nil {
		return nil, nil, nil, errors.New("signature does not verify")
	}
	return hdr, payload, jwk, nil
}

// jsonNumber decodes payload into v with numbers kept as json.Number.
func decodeClaims(payload []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	return dec.Decode(v)
}
