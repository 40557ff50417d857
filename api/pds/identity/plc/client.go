package plc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// DefaultURL is the public PLC directory.
const DefaultURL = "https://plc.directory"

// maxResponse caps how much of a directory's answer is read.
const maxResponse = 4 << 20

// ErrNotFound is matched (errors.Is) by the [*Error] of a 404 answer: the
// DID is not registered, or is tombstoned.
var ErrNotFound = errors.New("plc: DID not found")

// Error is a directory's refusal: any answer other than 2xx.
type Error struct {
	Method, URL string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the directory's own explanation (its JSON "message"), or
	// the start of the body when it sent none.
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("plc directory: %s %s: %d %s: %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Is makes a 404 match [ErrNotFound].
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// Client talks to a PLC directory. The zero value uses [DefaultURL] and
// [http.DefaultClient].
type Client struct {
	// URL is the directory's base URL, e.g. "https://plc.directory".
	URL string
	// HTTPClient defaults to http.DefaultClient.
	HTTPClient *http.Client
	// UserAgent, if set, is sent with every request.
	UserAgent string
}

// Data is a DID's current state, as GET /{did}/data serves it.
type Data struct {
	DID                 syntax.DID         `json:"did"`
	RotationKeys        []string           `json:"rotationKeys"`
	VerificationMethods map[string]string  `json:"verificationMethods"`
	AlsoKnownAs         []string           `json:"alsoKnownAs"`
	Services            map[string]Service `json:"services"`
}

// LogEntry is one operation of a DID's audit log.
type LogEntry struct {
	DID       syntax.DID `json:"did"`
	Operation Op         `json:"operation"`
	CID       string     `json:"cid"`
	Nullified bool       `json:"nullified"`
	CreatedAt time.Time  `json:"createdAt"`
}

func (c *Client) base() string {
	if c.URL == "" {
		return DefaultURL
	}
	return strings.TrimRight(c.URL, "/")
}

func (c *Client) didURL(did syntax.DID, suffix string) string {
	return c.base() + "/" + url.PathEscape(did.String()) + suffix
}

// do sends a request and decodes a 2xx JSON answer into out (if non-nil).
func (c *Client) do(ctx context.Context, method, u string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("plc directory: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("plc directory: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("plc directory: %s %s: reading answer: %w", method, u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &Error{Method: method, URL: u, StatusCode: resp.StatusCode, Message: errorMessage(b)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("plc directory: %s %s: decoding answer: %w", method, u, err)
	}
	return nil
}

func errorMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		switch {
		case e.Message != "":
			return e.Message
		case e.Error != "":
			return e.Error
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	if s == "" {
		s = "(no message)"
	}
	return s
}

// Submit sends a signed operation for did (POST /{did}). For a genesis
// operation did must be [GenesisDID] of op.
func (c *Client) Submit(ctx context.Context, did syntax.DID, op *Op) error {
	if op.Sig == "" {
		return errors.New("plc: operation is not signed")
	}
	return c.do(ctx, http.MethodPost, c.didURL(did, ""), op, nil)
}

// Resolve fetches did's DID document (GET /{did}). Parse it with
// identity.ParseIdentity for the handle, keys and PDS endpoint.
func (c *Client) Resolve(ctx context.Context, did syntax.DID) (*identity.DIDDocument, error) {
	var doc identity.DIDDocument
	if err := c.do(ctx, http.MethodGet, c.didURL(did, ""), nil, &doc); err != nil {
		return nil, err
	}
	if doc.DID != did {
		return nil, fmt.Errorf("plc directory: asked for %s, got the document of %s", did, doc.DID)
	}
	return &doc, nil
}

// GetData fetches did's current state (GET /{did}/data).
func (c *Client) GetData(ctx context.Context, did syntax.DID) (*Data, error) {
	var d Data
	if err := c.do(ctx, http.MethodGet, c.didURL(did, "/data"), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// GetLastOp fetches did's most recent operation (GET /{did}/log/last).
func (c *Client) GetLastOp(ctx context.Context, did syntax.DID) (*Op, error) {
	var op Op
	if err := c.do(ctx, http.MethodGet, c.didURL(did, "/log/last"), nil, &op); err != nil {
		return nil, err
	}
	return &op, nil
}

// GetAuditLog fetches all of did's operations, nullified ones included,
// with the CID the directory knows each by (GET /{did}/log/audit).
func (c *Client) GetAuditLog(ctx context.Context, did syntax.DID) ([]LogEntry, error) {
	var log []LogEntry
	if err := c.do(ctx, http.MethodGet, c.didURL(did, "/log/audit"), nil, &log); err != nil {
		return nil, err
	}
	return log, nil
}

// Update fetches did's last operation, builds the next one with
// [UpdateOp] (signed by rotationKey), submits it and returns it.
//
// Two concurrent updates of one DID race: the loser is refused by the
// directory, or nullifies the winner if signed by a higher-priority key.
func (c *Client) Update(ctx context.Context, did syntax.DID, rotationKey atcrypto.PrivateKey, change func(*Op) error) (*Op, error) {
	last, err := c.GetLastOp(ctx, did)
	if err != nil {
		return nil, err
	}
	next, err := UpdateOp(last, rotationKey, change)
	if err != nil {
		return nil, err
	}
	if err := c.Submit(ctx, did, next); err != nil {
		return nil, err
	}
	return next, nil
}

// UpdateHandle makes handle did's declared handle (see [Op.SetHandle]) and
// returns the submitted operation.
func (c *Client) UpdateHandle(ctx context.Context, did syntax.DID, rotationKey atcrypto.PrivateKey, handle syntax.Handle) (*Op, error) {
	return c.Update(ctx, did, rotationKey, func(op *Op) error {
		op.SetHandle(handle)
		return nil
	})
}
