package mst

import (
	"crypto/sha256"
	"fmt"
	"math/bits"
	"strings"
)

// MaxKeyLen is the longest MST key, in bytes (the repository spec's limit
// for a repo path used as a key).
const MaxKeyLen = 1024

// maxRecordKeyLen is the record-key limit of the record key spec.
const maxRecordKeyLen = 512

// ValidateKey reports whether key is a valid MST key of an atproto
// repository: `<collection>/<record key>`, at most MaxKeyLen bytes, with
// exactly one '/', a non-empty collection and a valid record key (1-512
// characters, not "." or ".."), both made only of the characters
// [a-zA-Z0-9_~\-:.].
//
// The collection is checked for its character set only ("NSID-ish"), as
// the reference implementations do when they check MST keys; the interop
// fixtures use collections such as "A0" that are not NSIDs. Callers that
// take a collection from a client parse it as a syntax.NSID at the edge.
//
// The returned error matches ErrInvalidKey.
func ValidateKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: length %d not in 1..%d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	coll, rkey, ok := strings.Cut(key, "/")
	if !ok || strings.IndexByte(rkey, '/') >= 0 {
		return fmt.Errorf("%w: %q: want exactly one '/'", ErrInvalidKey, key)
	}
	if coll == "" || !validKeyChars(coll) {
		return fmt.Errorf("%w: %q: invalid collection", ErrInvalidKey, key)
	}
	if rkey == "" || len(rkey) > maxRecordKeyLen || rkey == "." || rkey == ".." || !validKeyChars(rkey) {
		return fmt.Errorf("%w: %q: invalid record key", ErrInvalidKey, key)
	}
	return nil
}

// validKeyChars reports whether s has only the characters [a-zA-Z0-9_~\-:.].
func validKeyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '_', b == '~', b == '-', b == ':', b == '.':
		default:
			return false
		}
	}
	return true
}

// KeyHeight returns the layer of key in the tree: the number of leading
// zero 2-bit groups of SHA-256(key). This is fanout 4; layer 0 is the
// bottom of the tree.
func KeyHeight(key string) int {
	sum := sha256.Sum256([]byte(key))
	zeros := 0
	for _, b := range sum {
		if b == 0 {
			zeros += 8
			continue
		}
		zeros += bits.LeadingZeros8(b)
		break
	}
	return zeros / 2
}

// commonPrefixLen returns the length in bytes of the longest common prefix
// of a and b. Node entries store each key as the prefix length it shares
// with the previous key of the same node plus the remaining suffix.
func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
