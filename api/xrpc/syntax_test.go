package xrpc

import (
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

func readCases(t *testing.T, name string) []string {
	return eventlogtest.InteropCases(t, "testdata/"+name)
}

// The identifier parsers every XRPC parameter goes through pass the
// protocol's syntax vectors, every case. (Language tags are checked by
// api/pds/lexicon/langtag against their own vectors: indigo's
// syntax.ParseLanguage fails some of them.)
func TestInteropSyntax(t *testing.T) {
	parsers := map[string]func(string) error{
		"did":          func(s string) error { _, err := syntax.ParseDID(s); return err },
		"handle":       func(s string) error { _, err := syntax.ParseHandle(s); return err },
		"nsid":         func(s string) error { _, err := syntax.ParseNSID(s); return err },
		"aturi":        func(s string) error { _, err := syntax.ParseATURI(s); return err },
		"atidentifier": func(s string) error { _, err := syntax.ParseAtIdentifier(s); return err },
		"recordkey":    func(s string) error { _, err := syntax.ParseRecordKey(s); return err },
		"tid":          func(s string) error { _, err := syntax.ParseTID(s); return err },
		"cid":          func(s string) error { _, err := syntax.ParseCID(s); return err },
		"datetime":     func(s string) error { _, err := syntax.ParseDatetime(s); return err },
		"uri":          func(s string) error { _, err := syntax.ParseURI(s); return err },
	}
	for name, parse := range parsers {
		t.Run(name, func(t *testing.T) {
			for _, c := range readCases(t, name+"_syntax_valid.txt") {
				if err := parse(c); err != nil {
					t.Errorf("valid %q refused: %v", c, err)
				}
			}
			for _, c := range readCases(t, name+"_syntax_invalid.txt") {
				if err := parse(c); err == nil {
					t.Errorf("invalid %q accepted", c)
				}
			}
		})
	}
	t.Run("datetime_parse", func(t *testing.T) {
		for _, c := range readCases(t, "datetime_parse_invalid.txt") {
			if _, err := syntax.ParseDatetimeTime(c); err == nil {
				t.Errorf("impossible datetime %q accepted", c)
			}
		}
		// And a real one parses to the right instant.
		tm, err := syntax.ParseDatetimeTime("1985-04-12T23:20:50.123Z")
		if err != nil || !tm.Equal(time.Date(1985, 4, 12, 23, 20, 50, 123e6, time.UTC)) {
			t.Fatalf("%v %v", tm, err)
		}
	})
}
