package langtag

import (
	"testing"

	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

func readCases(t *testing.T, name string) []string {
	return eventlogtest.InteropCases(t, "testdata/"+name)
}

func TestInterop(t *testing.T) {
	for _, c := range readCases(t, "language_syntax_valid.txt") {
		if err := Check(c); err != nil {
			t.Errorf("valid %q refused: %v", c, err)
		}
	}
	for _, file := range []string{"language_syntax_invalid.txt", "language_parse_invalid.txt"} {
		for _, c := range readCases(t, file) {
			if err := Check(c); err == nil {
				t.Errorf("%s: %q accepted", file, c)
			}
		}
	}
}

func TestMore(t *testing.T) {
	tests := []struct {
		tag string
		ok  bool
	}{
		{"en", true}, {"en-US", true}, {"zh-yue-HK", true}, {"en-US-x-twain", true},
		{"x-whatever", true}, {"en-", false}, {"-en", false}, {"en--US", false},
		{"en-x", false}, {"en-a", false}, {"en-US-toolongsubtag", false}, {"én", false},
		{"en-a-bbb-x-a-ccc", true}, {"en-a-bbb-b-ccc", true},
	}
	for _, tt := range tests {
		if err := Check(tt.tag); (err == nil) != tt.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", tt.tag, err, tt.ok)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"en", "en-GB-boont-r-extended-sequence-x-private", "i-default", "X-fr-CH"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { _ = Check(s) })
}
