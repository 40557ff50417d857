package proxy

import (
	"context"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/projections/accounts"
)

// ServiceAuthTTL is the lifetime of the tokens the proxy signs: the
// reference's createServiceJwt default.
const ServiceAuthTTL = time.Minute

// Signer signs inter-service auth tokens for hosted accounts with their
// repo signing keys (auth.ServiceJWT: ES256K for K-256 keys, ES256 for
// P-256; iat now, exp now + ServiceAuthTTL, a random jti). It reads keys
// the way com.atproto.server.getServiceAuth does: the accounts projection
// names the key's log seq, commit.SigningKeys reads and caches it.
type Signer struct {
	Accounts *accounts.Projection
	Keys     *commit.SigningKeys
}

// Sign returns a token by iss for audience aud (a DID or DID#service) and
// method lxm.
func (s *Signer) Sign(ctx context.Context, iss syntax.DID, aud string, lxm syntax.NSID) (string, error) {
	a, err := s.Accounts.Get(ctx, iss)
	if err != nil {
		return "", fmt.Errorf("proxy: service auth for %s: %w", iss, err)
	}
	key, err := s.Keys.Get(ctx, a.DID, a.SigningKeySeq)
	if err != nil {
		return "", fmt.Errorf("proxy: service auth for %s: %w", iss, err)
	}
	return auth.ServiceJWT(key, iss, aud, lxm.String(), time.Now().Add(ServiceAuthTTL))
}
