package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"golang.org/x/crypto/scrypt"
)

// Password hashing parameters (helpers/scrypt.ts, which calls Node's
// crypto.scrypt with its defaults).
const (
	ScryptN      = 16384
	ScryptR      = 8
	ScryptP      = 1
	ScryptKeyLen = 64
	// SaltLen is the number of random salt bytes; the salt is stored, and
	// fed to scrypt, as its 32-character lowercase hex string.
	SaltLen = 16

	// NewPasswordMaxLength is the longest password createAccount,
	// resetPassword and admin updateAccountPassword accept
	// (NEW_PASSWORD_MAX_LENGTH), in UTF-16 code units like JavaScript's
	// String.length.
	NewPasswordMaxLength = 256
	// OldPasswordMaxLength is the longest password login paths verify
	// (OLD_PASSWORD_MAX_LENGTH); longer ones fail without running scrypt.
	OldPasswordMaxLength = 512
)

// PasswordLength is the length of s in UTF-16 code units, the unit of the
// reference's limits (a character outside the BMP counts 2).
func PasswordLength(s string) int {
	n := 0
	for _, r := range s {
		if utf16.RuneLen(r) == 2 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// CheckNewPassword refuses a password that may not be set: empty, or over
// NewPasswordMaxLength.
func CheckNewPassword(password string) error {
	if password == "" {
		return ErrEmptyPassword
	}
	if PasswordLength(password) > NewPasswordMaxLength {
		return fmt.Errorf("%w: maximum length is %d characters", ErrPasswordTooLong, NewPasswordMaxLength)
	}
	return nil
}

// HashPassword hashes an account password in the reference's format:
// "<salt>:<hash>", salt the lowercase hex of 16 random bytes, hash the
// lowercase hex of scrypt(password (UTF-8), salt (its hex string's bytes,
// as Node uses it), N=16384, r=8, p=1, 64 bytes). Hashes move between
// pdslog and the reference PDS unchanged. It refuses what CheckNewPassword
// refuses.
func HashPassword(password string) (string, error) {
	if err := CheckNewPassword(password); err != nil {
		return "", err
	}
	return hashWithSalt(password, newSalt())
}

// newSalt is the hex of SaltLen random bytes (genSaltAndHash).
func newSalt() string {
	var salt [SaltLen]byte
	_, _ = rand.Read(salt[:])
	return hex.EncodeToString(salt[:])
}

func hashWithSalt(password, salt string) (string, error) {
	key, err := scrypt.Key([]byte(password), []byte(salt), ScryptN, ScryptR, ScryptP, ScryptKeyLen)
	if err != nil {
		return "", fmt.Errorf("auth: scrypt: %w", err)
	}
	return salt + ":" + hex.EncodeToString(key), nil
}

// splitHash parses "salt:hex(64 bytes)".
func splitHash(encoded string) (salt string, sum []byte, err error) {
	salt, h, ok := strings.Cut(encoded, ":")
	if !ok || salt == "" || len(h) != 2*ScryptKeyLen {
		return "", nil, ErrMalformedHash
	}
	sum, err = hex.DecodeString(h)
	if err != nil {
		return "", nil, ErrMalformedHash
	}
	return salt, sum, nil
}

// VerifyPassword reports whether password matches encoded (from
// HashPassword or the reference). The comparison is constant-time. A
// password over OldPasswordMaxLength is false without hashing (as the
// reference's verifyAccountPassword), so that long inputs cost nothing. The
// error is ErrMalformedHash for an encoded value that is not a hash (then
// ok is false); a wrong password is (false, nil).
//
// scrypt takes tens of milliseconds: callers run it under the login
// throttle, and the reference also pads every login to at least 350 ms
// ([LoginMinDuration]) so that timing does not tell whether an account
// exists.
func VerifyPassword(password, encoded string) (ok bool, err error) {
	salt, want, err := splitHash(encoded)
	if err != nil {
		return false, err
	}
	if PasswordLength(password) > OldPasswordMaxLength {
		return false, nil
	}
	got, err := scrypt.Key([]byte(password), []byte(salt), ScryptN, ScryptR, ScryptP, ScryptKeyLen)
	if err != nil {
		return false, fmt.Errorf("auth: scrypt: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// appPasswordEncoding is the alphabet of @atproto/crypto randomStr(…,
// 'base32'): RFC 4648 lowercase, no padding.
var appPasswordEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewAppPassword returns a fresh app password in the reference's format
// (helpers/password.ts createAppPassword): the first 16 characters of the
// lowercase base32 of 16 random bytes, in four dash-separated groups,
// e.g. "abcd-ef23-ghij-k4lm" (80 bits).
func NewAppPassword() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := appPasswordEncoding.EncodeToString(b[:])[:16]
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// IsAppPasswordFormat reports whether s looks like NewAppPassword's output.
func IsAppPasswordFormat(s string) bool {
	if len(s) != 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i%5 == 4 {
			if c != '-' {
				return false
			}
			continue
		}
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// appPasswordSalt is the reference's per-account app-password salt: the hex
// of the first 16 bytes of SHA-256(did).
func appPasswordSalt(did syntax.DID) string {
	sum := sha256.Sum256([]byte(did))
	return hex.EncodeToString(sum[:16])
}

// HashAppPassword hashes an app password of account did the reference's
// way (scrypt.ts hashAppPassword): as HashPassword, but the salt is derived
// from the DID instead of random, so the result is deterministic and an app
// password can be found by its hash.
func HashAppPassword(did syntax.DID, password string) (string, error) {
	if _, err := syntax.ParseDID(string(did)); err != nil {
		return "", fmt.Errorf("%w: did: %v", ErrInvalidRequest, err)
	}
	if err := CheckNewPassword(password); err != nil {
		return "", err
	}
	return hashWithSalt(password, appPasswordSalt(did))
}

// VerifyAppPassword reports, in constant time, whether password is the app
// password of did whose stored hash is encoded. A password over
// OldPasswordMaxLength is false without hashing. To check a password
// against all of an account's app passwords with one scrypt, use
// MatchAppPassword.
func VerifyAppPassword(did syntax.DID, password, encoded string) (bool, error) {
	if _, _, err := splitHash(encoded); err != nil {
		return false, err
	}
	if PasswordLength(password) > OldPasswordMaxLength || password == "" {
		return false, nil
	}
	got, err := hashWithSalt(password, appPasswordSalt(did))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(encoded)) == 1, nil
}

// MatchAppPassword returns the index in encoded (the stored hashes of
// did's app passwords) of the one password is, or -1. It hashes password
// once, the reference's way (HashAppPassword: the salt derived from the
// DID, so the result is deterministic), and compares that with every
// stored hash in constant time, as the reference looks the hash up: a
// login's cost does not grow with the account's app passwords. A password
// over OldPasswordMaxLength, or empty, matches nothing without hashing.
func MatchAppPassword(did syntax.DID, password string, encoded []string) (int, error) {
	if PasswordLength(password) > OldPasswordMaxLength || password == "" || len(encoded) == 0 {
		return -1, nil
	}
	got, err := hashWithSalt(password, appPasswordSalt(did))
	if err != nil {
		return -1, err
	}
	found := -1
	for i, enc := range encoded {
		if subtle.ConstantTimeCompare([]byte(got), []byte(enc)) == 1 && found < 0 {
			found = i
		}
	}
	return found, nil
}
