package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSecretsGeneratedOnceWith0600(t *testing.T) {
	dir := t.TempDir()
	a, err := loadSecrets(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{jwtSecretPath, plcRotationPath, sealKeyPath} {
		if p == sealKeyPath {
			continue // created by the log
		}
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", p, st.Mode().Perm())
		}
	}
	b, err := loadSecrets(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.jwt, b.jwt) || !a.plcRotation.Equal(b.plcRotation) {
		t.Fatal("secrets changed between starts")
	}
	// The environment wins over the files.
	c, err := loadSecrets(dir, "from-env", "0000000000000000000000000000000000000000000000000000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if string(c.jwt) != "from-env" || c.plcRotation.Equal(a.plcRotation) {
		t.Fatal("environment secrets ignored")
	}
	if _, err := loadSecrets(dir, "", "zz"); err == nil {
		t.Fatal("bad hex accepted")
	}
}
