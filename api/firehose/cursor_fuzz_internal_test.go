package firehose

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseCursor: the subscribeRepos cursor parameter either parses to the
// non-negative integer it spells or is refused with a message naming it;
// never a panic, never a negative or wrapped seq.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "0", "1", "42", "-1", "+7", "007", "9223372036854775807",
		"9223372036854775808", "18446744073709551615", "1e3", "0x10", " 1", "1 ", "\x00", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		seq, err := parseCursor(raw)
		if err != nil {
			if !strings.Contains(err.Error(), "cursor must be a non-negative integer") {
				t.Fatalf("cursor %q: unexpected refusal %v", raw, err)
			}
			if n, perr := strconv.ParseInt(raw, 10, 64); raw != "" && perr == nil && n >= 0 {
				t.Fatalf("cursor %q refused though it is %d", raw, n)
			}
			return
		}
		if raw == "" {
			if seq != 0 {
				t.Fatalf("empty cursor parsed to %d", seq)
			}
			return
		}
		n, perr := strconv.ParseInt(raw, 10, 64)
		if perr != nil || n < 0 || int64(seq) != n {
			t.Fatalf("cursor %q parsed to %d (ParseInt: %d %v)", raw, seq, n, perr)
		}
	})
}
