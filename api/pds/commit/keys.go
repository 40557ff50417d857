package commit

import (
	"context"
	"fmt"
	"sync"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
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

// SigningKeys reads accounts' repo signing keys from the sealed private
// events SigningKeyEvent wrote, caching each parsed key (parsing costs tens
// of µs). The zero value is not usable; set Log.
type SigningKeys struct {
	Log   *eventlog.Log
	cache sync.Map // syntax.DID -> signingKey
}

type signingKey struct {
	seq eventlog.Seq
	key atcrypto.PrivateKey
}

// Get returns did's signing key, stored in the log at seq.
func (k *SigningKeys) Get(ctx context.Context, did syntax.DID, seq eventlog.Seq) (atcrypto.PrivateKey, error) {
	if seq == 0 {
		return nil, fmt.Errorf("commit: account %s has no signing key", did)
	}
	if c, ok := k.cache.Load(did); ok && c.(signingKey).seq == seq {
		return c.(signingKey).key, nil
	}
	ev, err := k.Log.Get(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	if ev.Private == nil || ev.Private.Type != events.TypeSigningKey || ev.DID != did {
		return nil, fmt.Errorf("commit: seq %d is not %s's signing key", seq, did)
	}
	var sk events.SigningKey
	if err := events.Unmarshal(ev.Private.Data, &sk); err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	key := sk.Key
	k.cache.Store(did, signingKey{seq: seq, key: key})
	return key, nil
}
