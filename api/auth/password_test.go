package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Vectors computed with the reference's code path (Node 20
// crypto.scryptSync(password, salt, 64) with default N/r/p, salt passed as
// its hex string, as helpers/scrypt.ts does).
const (
	nodeHashHunter2 = "0123456789abcdef0123456789abcdef:" +
		"4971254c23d915ca81fee56d02cb00bf641a7461bd516d17175bcb314c8abad13e74b1c8f6e11649cb30cee8f888fdd4c8baee55535fd8b628d65e8c655edffe"
	nodeHashUnicode = "00112233445566778899aabbccddeeff:" +
		"dfa89bb421d14b26c05c55767ade51f0fb1e21357817490d773639520bf2115b053629e7effe06bc1676383bb5a807f6f55ded75d75a474c5ceece7243eeb9f8"
	// hashAppPassword("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "abcd-efgh-ijkl-mnop")
	nodeAppPassHash = "099e4ea96cd62c05a232331859d20c97:" +
		"fd2bbf28c4711cd8d02ea6a9af381222ef64fa9654f065196498e87aeb668370e1accd55a4a2cf56b303904d22367493a14af2bda8d630abaa594676edbca564"
)

// TestPasswordReferenceVectors proves byte compatibility with the
// reference's stored hashes (3 scrypt runs).
func TestPasswordReferenceVectors(t *testing.T) {
	t.Parallel()
	if ok, err := VerifyPassword("hunter2", nodeHashHunter2); !ok || err != nil {
		t.Errorf("reference hash refused: %v %v", ok, err)
	}
	if ok, err := VerifyPassword("pässwörd🔑", nodeHashUnicode); !ok || err != nil {
		t.Errorf("reference unicode hash refused: %v %v", ok, err)
	}
	h, err := HashAppPassword(testDID, "abcd-efgh-ijkl-mnop")
	if err != nil || h != nodeAppPassHash {
		t.Errorf("app password hash %q, %v; want %q", h, err, nodeAppPassHash)
	}
	if !strings.HasPrefix(h, appPasswordSalt(testDID)+":") {
		t.Error("app password salt")
	}
}

// TestPasswordHashVerify: a fresh hash has the reference's shape, verifies
// its password and no other, and salts differ (3 scrypt runs).
func TestPasswordHashVerify(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	salt, sum, err := splitHash(h)
	if err != nil || len(salt) != 32 || len(sum) != 64 || strings.ToLower(h) != h {
		t.Fatalf("hash %q: %v", h, err)
	}
	if ok, err := VerifyPassword("correct horse", h); !ok || err != nil {
		t.Errorf("own password refused: %v %v", ok, err)
	}
	if ok, err := VerifyPassword("correct horsE", h); ok || err != nil {
		t.Errorf("wrong password: %v %v", ok, err)
	}
	// a fresh salt per hash (checked without hashing)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		s := newSalt()
		if len(s) != 2*SaltLen || seen[s] {
			t.Fatalf("bad or repeated salt %q", s)
		}
		seen[s] = true
	}
}

// TestPasswordRefusals need no scrypt run: malformed hashes, limits.
func TestPasswordRefusals(t *testing.T) {
	for _, enc := range []string{
		"", "nocolon", ":" + strings.Repeat("ab", 64), "salt:" + strings.Repeat("ab", 63),
		"salt:" + strings.Repeat("zz", 64), "salt:" + strings.Repeat("ab", 65),
	} {
		if ok, err := VerifyPassword("pw", enc); ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("VerifyPassword(%q) = %v, %v", enc, ok, err)
		}
		if ok, err := VerifyAppPassword(testDID, "pw", enc); ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("VerifyAppPassword(%q) = %v, %v", enc, ok, err)
		}
	}
	// too long to verify: false without hashing (and so without cost)
	long := strings.Repeat("a", OldPasswordMaxLength+1)
	if ok, err := VerifyPassword(long, nodeHashHunter2); ok || err != nil {
		t.Errorf("long password: %v %v", ok, err)
	}
	if ok, err := VerifyAppPassword(testDID, long, nodeAppPassHash); ok || err != nil {
		t.Errorf("long app password: %v %v", ok, err)
	}
	if _, err := HashPassword(""); !errors.Is(err, ErrEmptyPassword) {
		t.Error(err)
	}
	if _, err := HashPassword(strings.Repeat("a", NewPasswordMaxLength+1)); !errors.Is(err, ErrPasswordTooLong) {
		t.Error(err)
	}
	if _, err := HashAppPassword("not a did", "abcd-efgh-ijkl-mnop"); !errors.Is(err, ErrInvalidRequest) {
		t.Error(err)
	}
	// limits count UTF-16 code units, like JavaScript's String.length
	for s, n := range map[string]int{"": 0, "abc": 3, "é": 1, "🔑": 2, "a🔑b": 4} {
		if got := PasswordLength(s); got != n {
			t.Errorf("PasswordLength(%q) = %d, want %d", s, got, n)
		}
	}
	if err := CheckNewPassword(strings.Repeat("🔑", NewPasswordMaxLength/2)); err != nil {
		t.Error(err)
	}
	if err := CheckNewPassword(strings.Repeat("🔑", NewPasswordMaxLength/2) + "a"); !errors.Is(err, ErrPasswordTooLong) {
		t.Error(err)
	}
}

func TestAppPasswordFormat(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		p := NewAppPassword()
		if !IsAppPasswordFormat(p) || seen[p] {
			t.Fatalf("bad or repeated app password %q", p)
		}
		seen[p] = true
	}
	for _, s := range []string{"", "abcd-efgh-ijkl-mno", "abcd-efgh-ijkl-mnop-", "ABCD-efgh-ijkl-mnop", "abcd_efgh-ijkl-mnop", "abc1-efgh-ijkl-mnop", "abcdefghijklmnopqrs"} {
		if IsAppPasswordFormat(s) {
			t.Errorf("%q accepted", s)
		}
	}
	if !IsAppPasswordFormat("abcd-ef23-ghij-k4lm") {
		t.Error("valid format refused")
	}
}

// TestAppPasswordVerify: 2 scrypt runs.
func TestAppPasswordVerify(t *testing.T) {
	t.Parallel()
	if ok, err := VerifyAppPassword(testDID, "abcd-efgh-ijkl-mnop", nodeAppPassHash); !ok || err != nil {
		t.Errorf("reference app password refused: %v %v", ok, err)
	}
	// the salt is the DID's: same password, other account, no match
	if ok, err := VerifyAppPassword(syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"), "abcd-efgh-ijkl-mnop", nodeAppPassHash); ok || err != nil {
		t.Errorf("other DID matched: %v %v", ok, err)
	}
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	for b.Loop() {
		if ok, _ := VerifyPassword("hunter2", nodeHashHunter2); !ok {
			b.Fatal("refused")
		}
	}
}
