package pds_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/pdslog/pdslog/api/pds"
)

// TestOpenSecrets: a data dir's JWT secret and PLC rotation key are
// generated once (0600) and kept across opens; keys given in the options
// win over the files.
func TestOpenSecrets(t *testing.T) {
	dir := t.TempDir()
	open := func(o *pds.Options) *pds.PDS {
		t.Helper()
		p, err := pds.Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	a := open(nil)
	for _, p := range []string{pds.JWTSecretPath, pds.RotationKeyPath, pds.SealKeyPath} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", p, st.Mode().Perm())
		}
	}
	jwtA, _ := os.ReadFile(filepath.Join(dir, pds.JWTSecretPath))
	rotA := a.RotationKey
	a.Close()
	b := open(nil)
	jwtB, _ := os.ReadFile(filepath.Join(dir, pds.JWTSecretPath))
	if !bytes.Equal(jwtA, jwtB) || !rotA.Equal(b.RotationKey) {
		t.Fatal("secrets changed between opens")
	}
	// A token issued under the first open verifies under the second.
	b.Close()
	rot, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	c := open(&pds.Options{JWTSecret: []byte("from-the-environment"), RotationKey: rot})
	if !c.RotationKey.Equal(rot) || c.RotationKey.Equal(rotA) {
		t.Fatal("the rotation key given was not used")
	}
}

// TestOpenLocked: a second open of a data dir in use is refused with
// ErrInUse, naming the holder.
func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	p, err := pds.Open(dir, &pds.Options{Command: "serve"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = pds.Open(dir, &pds.Options{Command: "replay"})
	if !errors.Is(err, pds.ErrInUse) || !strings.Contains(err.Error(), "in use by pdslog serve") {
		t.Fatalf("second open: %v, want ErrInUse naming pdslog serve", err)
	}
}
