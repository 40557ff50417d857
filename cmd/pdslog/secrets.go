package main

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/pdslog/pdslog/eventlog"
)

// Files under the data dir holding generated secrets (0600, created on the
// first start when the environment does not provide them).
const (
	jwtSecretPath   = "keys/jwt.secret"
	plcRotationPath = "keys/plc-rotation.key"
)

// secrets are the server's own credentials.
type secrets struct {
	jwt         []byte
	plcRotation *atcrypto.PrivateKeyK256
}

// loadSecrets takes each secret from its setting (the reference's env
// names) or, when unset, from its file in the data dir, generating it there
// on the first start.
func loadSecrets(dataDir, jwtSecret, plcRotationHex string) (*secrets, error) {
	s := &secrets{}
	if jwtSecret != "" {
		s.jwt = []byte(jwtSecret)
	} else {
		k, err := eventlog.LoadOrCreateKey(filepath.Join(dataDir, jwtSecretPath))
		if err != nil {
			return nil, fmt.Errorf("jwt secret: %w", err)
		}
		s.jwt = k
	}
	var raw []byte
	if plcRotationHex != "" {
		b, err := hex.DecodeString(strings.TrimSpace(plcRotationHex))
		if err != nil {
			return nil, usageError{"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX is not hex"}
		}
		raw = b
	} else {
		k, err := eventlog.LoadOrCreateKey(filepath.Join(dataDir, plcRotationPath))
		if err != nil {
			return nil, fmt.Errorf("plc rotation key: %w", err)
		}
		raw = k
	}
	key, err := atcrypto.ParsePrivateBytesK256(raw)
	if err != nil {
		return nil, fmt.Errorf("plc rotation key: %w", err)
	}
	s.plcRotation = key
	return s, nil
}
