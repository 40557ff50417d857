package auth

import (
	"encoding/base64"
	"errors"
	"testing"
)

func basic(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }

func TestCheckAdmin(t *testing.T) {
	const pw = "s3cret:with:colons"
	for _, c := range []struct {
		name   string
		header string
		pass   string
		want   bool
	}{
		{"right", basic("admin:" + pw), pw, true},
		{"scheme case-insensitive", "bAsIc " + base64.StdEncoding.EncodeToString([]byte("admin:"+pw)), pw, true},
		{"unpadded base64", "Basic " + base64.RawStdEncoding.EncodeToString([]byte("admin:"+pw)), pw, true},
		{"wrong password", basic("admin:" + pw + "x"), pw, false},
		{"password prefix", basic("admin:s3cret"), pw, false},
		{"wrong user", basic("root:" + pw), pw, false},
		{"user case matters", basic("Admin:" + pw), pw, false},
		{"no colon", basic("admin"), pw, false},
		{"empty password sent", basic("admin:"), pw, false},
		{"no admin password configured", basic("admin:"), "", false},
		{"no admin password, any creds", basic("admin:x"), "", false},
		{"bearer", "Bearer " + pw, pw, false},
		{"no header", "", pw, false},
		{"bad base64", "Basic !!!", pw, false},
		{"two spaces", "Basic  " + base64.StdEncoding.EncodeToString([]byte("admin:"+pw)), pw, false},
		{"trailing part", basic("admin:"+pw) + " x", pw, false},
	} {
		if got := CheckAdmin(c.header, c.pass); got != c.want {
			t.Errorf("%s: CheckAdmin = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	for _, c := range []struct {
		header, scheme, cred string
		bad                  bool
	}{
		{"", "", "", false},
		{"Bearer abc", SchemeBearer, "abc", false},
		{"bearer abc", SchemeBearer, "abc", false},
		{"DPOP abc", SchemeDPoP, "abc", false},
		{"Basic abc", SchemeBasic, "abc", false},
		{"Bearer", "", "", true},
		{"Bearer a b", "", "", true},
		{"Token abc", "", "", true},
	} {
		s, cred, err := ParseAuthorization(c.header)
		if s != c.scheme || cred != c.cred || (err != nil) != c.bad {
			t.Errorf("ParseAuthorization(%q) = %q %q %v", c.header, s, cred, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Errorf("error %v", err)
		}
	}
	if tok, ok, err := BearerToken("Bearer xyz"); tok != "xyz" || !ok || err != nil {
		t.Error("BearerToken")
	}
	if _, ok, err := BearerToken("Basic xyz"); ok || err != nil {
		t.Error("BearerToken basic")
	}
	if _, ok, err := BearerToken("Bearer"); ok || err == nil {
		t.Error("BearerToken malformed")
	}
}
