package mst

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

func TestValidateKey(t *testing.T) {
	long := strings.Repeat("a", 300) + "." + strings.Repeat("b", 200) + "/" + strings.Repeat("c", 512)
	tests := []struct {
		key   string
		valid bool
	}{
		{"app.bsky.feed.post/3jui7kd2z2t2y", true},
		{"app.bsky.actor.profile/self", true},
		{"com.example.record/a_b~c-d:e.f", true},
		{"A0/374913", true}, // interop example key: the collection is only checked for its characters
		{"coll/..a", true},
		{long, true},
		{long + "c", false}, // record key over 512
		{"coll/" + strings.Repeat("k", 512), true},
		{strings.Repeat("n", 1024-5) + "/abcd", true},
		{strings.Repeat("n", 1024-4) + "/abcd", false}, // 1025 bytes
		{"", false},
		{"app.bsky.feed.post", false},
		{"app.bsky.feed.post/", false},
		{"/3jui7kd2z2t2y", false},
		{"app.bsky.feed.post/a/b", false},
		{"app.bsky.feed.post//a", false},
		{"coll/.", false},
		{"coll/..", false},
		{"coll/a b", false},
		{" coll/a", false},
		{"coll/a ", false},
		{"coll/a#b", false},
		{"coll/a%20", false},
		{"coll/jalapeño", false},
		{"co@ll/a", false},
		{"coll/a\x00", false},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if (err == nil) != tt.valid {
			t.Errorf("ValidateKey(%.40q) = %v, want valid %v", tt.key, err, tt.valid)
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%.40q) error %v does not match ErrInvalidKey", tt.key, err)
		}
	}
}

// TestValidateKeyOracle compares ValidateKey on random near-valid strings
// with indigo's syntax package: the record key part must be a valid
// syntax.RecordKey, every valid repo path (syntax.ParseRepoPath: NSID and
// record key) must be a valid key, and the collection must use only the
// allowed characters.
func TestValidateKeyOracle(t *testing.T) {
	const alphabet = "abcXYZ019._~-:/ @#é"
	rng := rand.New(rand.NewPCG(3, 4))
	valid := 0
	for range 20000 {
		b := make([]byte, 1+rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		key := string(b)
		if rng.IntN(3) == 0 {
			key = "app.bsky.feed.post/" + key
		}
		got := ValidateKey(key) == nil
		coll, rkey, ok := strings.Cut(key, "/")
		_, rkErr := syntax.ParseRecordKey(rkey)
		want := ok && !strings.Contains(rkey, "/") && coll != "" && validKeyChars(coll) && rkErr == nil
		if got != want {
			t.Fatalf("ValidateKey(%q) valid = %v, oracle says %v", key, got, want)
		}
		if _, _, err := syntax.ParseRepoPath(key); err == nil && !got {
			t.Fatalf("ValidateKey(%q) rejects a valid repo path", key)
		}
		if got {
			valid++
		}
	}
	if valid < 500 {
		t.Fatalf("only %d valid keys generated", valid)
	}
}
