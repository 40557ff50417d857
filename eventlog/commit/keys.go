package commit

import (
	"fmt"
	"sync"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"
)

// keyCache holds parsed did:key public keys: parsing one costs ~20 µs, and
// every verified commit needs its account's key.
var keyCache sync.Map // did:key string -> atcrypto.PublicKey

// ParsePublicKey parses a did:key (K-256 or P-256), caching the result.
func ParsePublicKey(didKey string) (atcrypto.PublicKey, error) {
	if k, ok := keyCache.Load(didKey); ok {
		return k.(atcrypto.PublicKey), nil
	}
	k, err := atcrypto.ParsePublicDIDKey(didKey)
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	keyCache.Store(didKey, k)
	return k, nil
}

// CIDForBytes is the CIDv1 (dag-cbor, sha2-256) of DAG-CBOR bytes.
func CIDForBytes(b []byte) (cid.Cid, error) { return cborCID(b) }
