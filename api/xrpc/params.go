package xrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/labstack/echo/v4"
)

// Query parameters are parsed into atproto's typed identifiers here, at the
// edge; a bad one is a 400 InvalidRequest naming the parameter.

// Query returns a required query parameter.
func Query(c echo.Context, name string) (string, error) {
	v := c.QueryParam(name)
	if v == "" {
		return "", InvalidRequest("missing required parameter %q", name)
	}
	return v, nil
}

func parse[T any](name, raw string, p func(string) (T, error)) (T, error) {
	v, err := p(raw)
	if err != nil {
		var zero T
		return zero, InvalidRequest("invalid %s %q: %v", name, raw, err)
	}
	return v, nil
}

// ParseAtIdentifier parses a handle-or-DID parameter value.
func ParseAtIdentifier(name, raw string) (syntax.AtIdentifier, error) {
	return parse(name, raw, syntax.ParseAtIdentifier)
}

// ParseDID parses a DID parameter value.
func ParseDID(name, raw string) (syntax.DID, error) { return parse(name, raw, syntax.ParseDID) }

// ParseTID parses a TID (a repo rev) parameter.
func ParseTID(name, raw string) (syntax.TID, error) { return parse(name, raw, syntax.ParseTID) }

// ParseNSID parses an NSID parameter value.
func ParseNSID(name, raw string) (syntax.NSID, error) { return parse(name, raw, syntax.ParseNSID) }

// ParseRecordKey parses a record key parameter value.
func ParseRecordKey(name, raw string) (syntax.RecordKey, error) {
	return parse(name, raw, syntax.ParseRecordKey)
}

// ParseCID parses a CID parameter value (atproto profile: a CIDv1 string).
func ParseCID(name, raw string) (cid.Cid, error) {
	if _, err := syntax.ParseCID(raw); err != nil {
		return cid.Undef, InvalidRequest("invalid %s %q: %v", name, raw, err)
	}
	c, err := cid.Decode(raw)
	if err != nil {
		return cid.Undef, InvalidRequest("invalid %s %q: %v", name, raw, err)
	}
	return c, nil
}

// OptionalCID parses an optional CID; nil when absent.
func OptionalCID(name string, raw *string) (*cid.Cid, error) {
	if raw == nil {
		return nil, nil
	}
	c, err := ParseCID(name, *raw)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Limit parses an optional integer "limit" in [1, max], def when absent.
func Limit(c echo.Context, def, max int) (int, error) {
	raw := c.QueryParam("limit")
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > max {
		return 0, InvalidRequest("limit must be an integer from 1 to %d", max)
	}
	return n, nil
}

// Bool parses an optional boolean parameter.
func Bool(c echo.Context, name string) (bool, error) {
	switch strings.ToLower(c.QueryParam(name)) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, InvalidRequest("%s must be true or false", name)
}

// BindJSON decodes a JSON request body of at most limit bytes into v. The
// body must be application/json; unknown fields are allowed (lexicons may
// grow), malformed JSON or trailing data is a 400.
func BindJSON(c echo.Context, limit int64, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/json" {
		return InvalidRequest("request body must be application/json, got %q", ct)
	}
	// The body is read whole (it is at most limit) so that invalid UTF-8,
	// which encoding/json would silently replace with U+FFFD, is refused.
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Name: "PayloadTooLarge", Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
		}
		if timedOut := BodyTimeout(err); timedOut != nil {
			return timedOut
		}
		return InvalidRequest("reading the body: %v", err)
	}
	if !utf8.Valid(body) {
		return InvalidRequest("invalid JSON body: not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return InvalidRequest("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return InvalidRequest("invalid JSON body: trailing data")
	}
	return nil
}

// ParseHandle parses a handle parameter value.
func ParseHandle(name, raw string) (syntax.Handle, error) {
	return parse(name, raw, syntax.ParseHandle)
}
