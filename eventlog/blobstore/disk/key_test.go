package disk

import (
	"strings"
	"testing"
)

func TestEncodeDID(t *testing.T) {
	for did, want := range map[string]string{
		"did:plc:ewvi7nxzyoun6zhxrhs64oiz": "did_plc_ewvi7nxzyoun6zhxrhs64oiz",
		"did:web:example.com":              "did_web_example.com",
		"did:web:localhost%3A2583":         "did_web_localhost%253%412583",
		"did:web:Example.COM":              "did_web_%45xample.%43%4F%4D",
		".":                                "%2E",
		"..":                               "%2E.",
		"a/b":                              "a%2Fb",
	} {
		if got := EncodeDID(did); got != want {
			t.Errorf("EncodeDID(%q) = %q, want %q", did, got, want)
		}
		if back, err := DecodeDID(want); err != nil || back != did {
			t.Errorf("DecodeDID(%q) = %q, %v; want %q", want, back, err, did)
		}
	}
	for _, bad := range []string{"", "did:plc:x", ".x", "%2e", "%4", "%zz", "did_web_%2Ex", "A", "x/y", "%61"} {
		if did, err := DecodeDID(bad); err == nil {
			t.Errorf("DecodeDID(%q) = %q, want an error", bad, did)
		}
	}
}

// FuzzKeyEncoding: every string encodes to one safe file name that decodes
// back to it, and every name DecodeDID accepts is the encoding of what it
// returns (so distinct names never alias one DID).
func FuzzKeyEncoding(f *testing.F) {
	for _, s := range []string{"did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:localhost%3A2583", "did:web:Example.COM", ".", "..", "%2E", "did_web_x", "\x00/\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s != "" {
			name := EncodeDID(s)
			if name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00:") {
				t.Fatalf("EncodeDID(%q) = %q, not a safe file name", s, name)
			}
			for i := 0; i < len(name); i++ {
				c := name[i]
				ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '%' ||
					c >= 'A' && c <= 'F' && i > 0 && (name[i-1] == '%' || i > 1 && name[i-2] == '%')
				if !ok {
					t.Fatalf("EncodeDID(%q) = %q has %q at %d", s, name, c, i)
				}
			}
			back, err := DecodeDID(name)
			if err != nil || back != s {
				t.Fatalf("DecodeDID(EncodeDID(%q)) = %q, %v", s, back, err)
			}
		}
		if did, err := DecodeDID(s); err == nil && EncodeDID(did) != s {
			t.Fatalf("DecodeDID(%q) = %q, which encodes to %q", s, did, EncodeDID(did))
		}
	})
}
