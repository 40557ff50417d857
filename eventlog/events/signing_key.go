package events

import (
	"errors"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// TypeSigningKey records an account's repo signing key. The key in force
// for a repo is the latest such event before a commit.
const TypeSigningKey = "repo.signing_key" // SigningKey (secret)

// SigningKey is a repo signing key. Its data is the private key in
// multibase form (not JSON), sealed at rest.
type SigningKey struct {
	Key atcrypto.PrivateKeyExportable
}

func (*SigningKey) Type() string { return TypeSigningKey }
func (*SigningKey) Secret() bool { return true }

func (k *SigningKey) encode() ([]byte, error) {
	if k.Key == nil {
		return nil, errors.New("no key")
	}
	return []byte(k.Key.Multibase()), nil
}

func (k *SigningKey) decode(data []byte) error {
	key, err := atcrypto.ParsePrivateMultibase(string(data))
	if err != nil {
		return err
	}
	k.Key = key
	return nil
}
