package xrpc

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/labstack/echo/v4"
)

// badRequest fails the test unless err is an *Error answering 400
// InvalidRequest (what every refused parameter must be).
func badRequest(t *testing.T, what, raw string, err error) {
	t.Helper()
	var xe *Error
	if !errors.As(err, &xe) || xe.Status != http.StatusBadRequest || xe.Name != "InvalidRequest" {
		t.Fatalf("%s %q: refusal is not a 400 InvalidRequest: %#v", what, raw, err)
	}
}

// FuzzParams: every query-parameter parser either refuses with a 400
// InvalidRequest or returns a value that is the input (identifiers) or
// round-trips (CIDs, limit); none panics.
func FuzzParams(f *testing.F) {
	for _, s := range []string{
		"", "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:example.com", "did:", "did:plc:",
		"app.bsky.feed.post", "com.example.*", "3jzfcijpj2z2a", "self", ".", "..", "a:b",
		"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", "QmQ", "b", "zb2rh",
		"10", "0", "-1", "100", "101", "9223372036854775808", "1e3", " 1", "\x00", "\xff",
		strings.Repeat("a", 600),
	} {
		f.Add(s)
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, raw string) {
		if d, err := ParseDID("did", raw); err != nil {
			badRequest(t, "did", raw, err)
		} else if d.String() != raw {
			t.Fatalf("did %q parsed to %q", raw, d)
		}
		if n, err := ParseNSID("collection", raw); err != nil {
			badRequest(t, "nsid", raw, err)
		} else if n.String() != raw {
			t.Fatalf("nsid %q parsed to %q", raw, n)
		}
		if k, err := ParseRecordKey("rkey", raw); err != nil {
			badRequest(t, "rkey", raw, err)
		} else if k.String() != raw || k == "." || k == ".." {
			t.Fatalf("rkey %q parsed to %q", raw, k)
		}
		if v, err := ParseTID("rev", raw); err != nil {
			badRequest(t, "tid", raw, err)
		} else if v.String() != raw {
			t.Fatalf("tid %q parsed to %q", raw, v)
		}
		if _, err := ParseAtIdentifier("repo", raw); err != nil {
			badRequest(t, "at-identifier", raw, err)
		}
		if _, err := ParseHandle("handle", raw); err != nil {
			badRequest(t, "handle", raw, err)
		}
		if c, err := ParseCID("cid", raw); err != nil {
			badRequest(t, "cid", raw, err)
		} else {
			if !c.Defined() {
				t.Fatalf("cid %q parsed to an undefined CID", raw)
			}
			again, err := cid.Decode(c.String())
			if err != nil || !again.Equals(c) {
				t.Fatalf("cid %q does not round-trip: %v %v", raw, again, err)
			}
		}
		if p, err := OptionalCID("cid", &raw); err != nil {
			badRequest(t, "optional cid", raw, err)
		} else if p == nil {
			t.Fatalf("optional cid %q present but parsed to nil", raw)
		}

		q := url.Values{"limit": {raw}, "flag": {raw}}
		req := httptest.NewRequest(http.MethodGet, "/xrpc/x?"+q.Encode(), nil)
		c := e.NewContext(req, httptest.NewRecorder())
		if n, err := Limit(c, 50, 100); err != nil {
			badRequest(t, "limit", raw, err)
		} else if raw == "" && n != 50 || n < 1 || n > 100 {
			t.Fatalf("limit %q parsed to %d", raw, n)
		}
		if _, err := Bool(c, "flag"); err != nil {
			badRequest(t, "bool", raw, err)
		}
	})
}

// FuzzBindJSON: a request body of any bytes, with any content type, either
// binds or is refused with a named 4xx; a body that binds is valid UTF-8
// JSON of at most the limit and application/json.
func FuzzBindJSON(f *testing.F) {
	for _, s := range []struct{ ct, body string }{
		{"application/json", `{"repo":"did:plc:x","collection":"a.b.c","record":{"text":"hi"}}`},
		{"application/json; charset=utf-8", `{"writes":[{"$type":"x","value":{}}]}`},
		{"application/json", `{"a":1}{"b":2}`},
		{"application/json", `{"a":"\xff"}`},
		{"application/json", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`},
		{"application/json", `{"repo":1,"record":"x"}`},
		{"text/plain", `{}`},
		{"", ``},
		{"APPLICATION/JSON", `{"a\u0000":null}`},
		{"application/json", strings.Repeat(`{"a":`, 300)},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	type input struct {
		Repo       string         `json:"repo"`
		Collection string         `json:"collection"`
		Record     map[string]any `json:"record"`
		Writes     []any          `json:"writes"`
	}
	const limit = 4096
	e := echo.New()
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/xrpc/x", strings.NewReader(string(body)))
		req.Header.Set(echo.HeaderContentType, ct)
		c := e.NewContext(req, httptest.NewRecorder())
		var in input
		err := BindJSON(c, limit, &in)
		if err != nil {
			var xe *Error
			if !errors.As(err, &xe) || xe.Status < 400 || xe.Status > 499 || xe.Name == "" {
				t.Fatalf("refusal is not a named 4xx: %#v", err)
			}
			return
		}
		if len(body) > limit || !utf8.Valid(body) {
			t.Fatalf("accepted a body of %d bytes (valid UTF-8: %v)", len(body), utf8.Valid(body))
		}
		if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			t.Fatalf("accepted content type %q", ct)
		}
	})
}
