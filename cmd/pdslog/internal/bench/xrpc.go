package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// newHTTPClient is the clients' shared HTTP client: a keep-alive
// connection per client, no proxy.
func newHTTPClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConns:        concurrency + 16,
			MaxIdleConnsPerHost: concurrency + 16,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// callError is a call the target answered with an error (or not at all).
type callError struct {
	status int // 0: no answer
	name   string
	msg    string
}

func (e *callError) Error() string {
	if e.status == 0 {
		return "bench: " + e.msg
	}
	return fmt.Sprintf("bench: HTTP %d %s: %s", e.status, e.name, e.msg)
}

// errorName is the name a failed call is counted under: the XRPC error
// name, or "transport" when the target did not answer.
func errorName(err error) string {
	var ce *callError
	if errors.As(err, &ce) && ce.status != 0 {
		return ce.name
	}
	return "transport"
}

// xrpc calls method; body is JSON unless it is []byte; out, if set, gets the
// JSON answer. A token starting "Basic " is sent as is, any other as a
// bearer token.
func (b *runner) xrpc(ctx context.Context, httpMethod, method string, q url.Values, token string, body, out any) error {
	req, err := b.request(ctx, httpMethod, method, q, token, body)
	if err != nil {
		return err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return &callError{msg: err.Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &callError{msg: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		var xe struct{ Error, Message string }
		if json.Unmarshal(data, &xe) != nil || xe.Error == "" {
			xe.Error = "HTTP" + strconv.Itoa(resp.StatusCode)
		}
		return &callError{status: resp.StatusCode, name: xe.Error, msg: xe.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("bench: %s: %w", method, err)
		}
	}
	return nil
}

func (b *runner) request(ctx context.Context, httpMethod, method string, q url.Values, token string, body any) (*http.Request, error) {
	u := b.cfg.Target + "/xrpc/" + method
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	ctype := ""
	switch v := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(v), "application/octet-stream"
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, httpMethod, u, rd)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	switch {
	case strings.HasPrefix(token, "Basic "):
		req.Header.Set("Authorization", token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}
