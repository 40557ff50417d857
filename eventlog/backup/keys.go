package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"
)

// The keys bundle: every regular file of the data dir's keys/ directory
// (the log's seal key, the JWT secret, the PLC rotation key), as JSON
// {"v":1,"files":{NAME: base64}} encrypted with age — to a scrypt
// recipient (the operator's passphrase) or to X25519 recipients. It is
// never stored in clear: the log's secret payloads are sealed under
// seal.key, so the bundle is what makes a backup's secrets readable.
const (
	maxKeyFiles    = 64
	maxKeyFileSize = 1 << 20
)

type keyBundle struct {
	Version int               `json:"v"`
	Files   map[string][]byte `json:"files"`
}

// readKeysDir reads dir into a bundle (nil files when it does not exist).
func readKeysDir(dir string) (map[string][]byte, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup: read keys: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("backup: read keys: %w", err)
		}
		files[e.Name()] = b
	}
	if err := checkKeyFiles(files); err != nil {
		return nil, err
	}
	return files, nil
}

func checkKeyFiles(files map[string][]byte) error {
	if len(files) > maxKeyFiles {
		return fmt.Errorf("%w: %d key files", ErrCorrupt, len(files))
	}
	for name, b := range files {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || len(name) > 255 {
			return fmt.Errorf("%w: key file name %q", ErrCorrupt, name)
		}
		if len(b) > maxKeyFileSize {
			return fmt.Errorf("%w: key file %s of %d bytes", ErrCorrupt, name, len(b))
		}
	}
	return nil
}

// encodeKeyBundle renders files canonically (sorted names), and its digest.
func encodeKeyBundle(files map[string][]byte) ([]byte, string) {
	b, err := json.Marshal(keyBundle{Version: 1, Files: files}) // encoding/json sorts map keys
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(append([]byte("pdslog-keys\x00"), b...))
	return b, hex.EncodeToString(sum[:])
}

// DecodeKeyBundle parses a decrypted keys bundle.
func DecodeKeyBundle(b []byte) (map[string][]byte, error) {
	var kb keyBundle
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kb); err != nil {
		return nil, fmt.Errorf("%w: keys: %v", ErrCorrupt, err)
	}
	if kb.Version != 1 {
		return nil, fmt.Errorf("%w: keys version %d", ErrUnknownVersion, kb.Version)
	}
	if kb.Files == nil {
		kb.Files = map[string][]byte{}
	}
	if err := checkKeyFiles(kb.Files); err != nil {
		return nil, err
	}
	return kb.Files, nil
}

// sealKeys encrypts a bundle to the recipients.
func sealKeys(bundle []byte, recipients []age.Recipient) ([]byte, error) {
	var out bytes.Buffer
	w, err := age.Encrypt(&out, recipients...)
	if err != nil {
		return nil, fmt.Errorf("backup: encrypt keys: %w", err)
	}
	if _, err := w.Write(bundle); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// openKeys decrypts and parses a sealed bundle.
func openKeys(sealed []byte, identities []age.Identity) (map[string][]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(sealed), identities...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) || strings.Contains(err.Error(), "incorrect passphrase") {
			return nil, fmt.Errorf("%w: %v", ErrPassphrase, err)
		}
		return nil, fmt.Errorf("%w: keys: %v", ErrCorrupt, err)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxKeyFiles*maxKeyFileSize*2))
	if err != nil {
		return nil, fmt.Errorf("%w: keys: %v", ErrCorrupt, err)
	}
	return DecodeKeyBundle(b)
}

// writeKeysDir writes files into dir (0700; files 0600, synced). A file
// already there with other content is refused.
func writeKeysDir(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if old, err := os.ReadFile(p); err == nil {
			if !bytes.Equal(old, files[n]) {
				return fmt.Errorf("%w: %s exists with other content", ErrNotEmpty, p)
			}
			continue
		}
		tmp := p + ".tmp"
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		_, err = f.Write(files[n])
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, p)
		}
		if err != nil {
			os.Remove(tmp)
			return fmt.Errorf("backup: write key %s: %w", n, err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// PassphraseKeys returns the recipient and identity of a passphrase
// (age scrypt). workFactor is scrypt's log2 cost (0: age's default, 18);
// the identity accepts any cost up to 22 (age's default maximum).
func PassphraseKeys(passphrase string, workFactor int) (age.Recipient, age.Identity, error) {
	if passphrase == "" {
		return nil, nil, errors.New("backup: empty passphrase")
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, nil, err
	}
	if workFactor > 0 {
		r.SetWorkFactor(workFactor)
	}
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, nil, err
	}
	return r, id, nil
}
