package d1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzResponseEnvelope: whatever Cloudflare (or anything in between)
// answers — any status, any body, any Retry-After — the client returns
// either results, one per statement, only for a 200 whose envelope says
// success, or an error the caller can classify; never a panic.
func FuzzResponseEnvelope(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
		retry  string
	}{
		{200, `{"result":[{"results":[{"a":1}],"success":true,"meta":{"changes":1}}],"success":true,"errors":[],"messages":[]}`, ""},
		{200, `{"result":[{"results":[],"success":true},{"results":[{"x":"y"}],"success":true}],"success":true}`, ""},
		{200, `{"result":[{"success":false}],"success":true}`, ""},
		{200, `{"result":[{"meta":"bad"}],"success":true}`, ""},
		{200, `{"success":true}`, ""},
		{200, `not json`, ""},
		{429, `{"success":false,"errors":[{"code":971,"message":"slow down"}]}`, "3"},
		{503, `<html>bad gateway</html>`, "Wed, 21 Oct 2015 07:28:00 GMT"},
		{400, `{"success":false,"errors":[{"code":7500,"message":"SQLITE_ERROR"}]}`, ""},
		{403, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`, ""},
		{404, `{}`, "-1"},
		{200, `{"result":[{"results":[{"n":1e400}]}],"success":true}`, "99999999999999999999"},
	} {
		f.Add(s.status, []byte(s.body), s.retry, uint8(1))
		f.Add(s.status, []byte(s.body), s.retry, uint8(2))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, retry string, nstmts uint8) {
		if status < 100 || status > 999 {
			return
		}
		c, err := New(Options{
			AccountID: "acct", DatabaseID: "db", Token: "tok", APIBase: "http://d1.invalid/client/v4",
			Budget: -1, MaxAttempts: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				h := http.Header{}
				h.Set("Retry-After", retry)
				return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
			})},
		})
		if err != nil {
			t.Fatal(err)
		}
		n := int(nstmts%4) + 1
		stmts := make([]Statement, n)
		for i := range stmts {
			stmts[i] = Statement{SQL: "SELECT " + strconv.Itoa(i), Params: []string{"p"}}
		}
		res, err := c.Batch(context.Background(), stmts)
		if err == nil {
			if status != http.StatusOK || len(res) != n {
				t.Fatalf("status %d: %d results for %d statements accepted", status, len(res), n)
			}
		} else {
			var de *Error
			if !errors.As(err, &de) && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrNotFound) && !strings.HasPrefix(err.Error(), "d1: ") {
				t.Fatalf("unclassifiable error %v", err)
			}
			if errors.As(err, &de) && de.Status != status {
				t.Fatalf("error reports status %d, got %d", de.Status, status)
			}
		}
		_ = parseRetryAfter(retry)
		if _, err := c.Exec(context.Background(), "SELECT 1"); err == nil && status != http.StatusOK {
			t.Fatalf("Exec accepted status %d", status)
		}
	})
}
