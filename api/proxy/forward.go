package proxy

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/ssrf"
	"github.com/pdslog/pdslog/api/xrpc"
)

// mode says how an upstream answer will be used.
type mode int

const (
	// modeStream: relayed as is, in the encoding the client accepts.
	modeStream mode = iota
	// modeRead: maybe read and rewritten (read-after-write), so asked in
	// an encoding this server can decode (gzip or identity).
	modeRead
)

// Request headers forwarded to the upstream (pipethrough.ts), besides the
// body's content headers on POST and accept-encoding.
var forwardedRequestHeaders = []string{"Accept-Language", "Atproto-Accept-Labelers", "X-Bsky-Topics"}

// Response headers forwarded back: the content headers and
// RES_HEADERS_TO_FORWARD.
var (
	contentHeaders                 = []string{"Content-Length", "Content-Encoding", "Content-Type", "Content-Language"}
	forwardedResponseHeaders       = []string{"Atproto-Repo-Rev", "Atproto-Content-Labelers", "Retry-After"}
	errHeadersTimeout              = errors.New("proxy: upstream headers timeout")
	errBodyTimeout                 = errors.New("proxy: upstream body timeout")
	errTooLarge                    = errors.New("proxy: upstream response too large")
	maxErrorBody             int64 = 64 << 10
)

// upstream is an answer being received. close releases it.
type upstream struct {
	resp   *http.Response
	body   io.Reader // resp.Body behind the idle timeout
	max    int64
	target *Target
	cancel context.CancelCauseFunc
	ctx    context.Context
	timer  *time.Timer
}

func (u *upstream) close() {
	u.timer.Stop()
	u.cancel(nil)
	u.resp.Body.Close()
}

// idleReader resets the body timeout on every read.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (r *idleReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.timer.Reset(r.d)
	return n, err
}

// send forwards the request being served to t as method nsid on behalf of
// iss, with a fresh service-auth token (none when iss is ""), and returns
// once the upstream's status and headers are in (or HeadersTimeout
// passed).
func (p *Proxy) send(c echo.Context, t *Target, nsid syntax.NSID, iss syntax.DID, m mode) (*upstream, error) {
	req := c.Request()
	base, err := url.Parse(t.URL)
	if err != nil || base.Host == "" {
		return nil, &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: fmt.Sprintf("service %s has no usable URL", t.Ref())}
	}
	if err := ssrf.CheckURL(base, !p.cfg.DisableSSRFProtection); err != nil {
		return nil, p.refused(t, err)
	}
	var tok string // iss "": a call without credentials (PassThrough)
	if iss != "" {
		if tok, err = p.signer.Sign(req.Context(), iss, p.audience(t), nsid); err != nil {
			return nil, err
		}
	}
	dest := url.URL{Scheme: base.Scheme, Host: base.Host, Path: "/xrpc/" + nsid.String(), RawQuery: req.URL.RawQuery}

	ctx, cancel := context.WithCancelCause(req.Context())
	var gotHeaders atomic.Bool
	timer := time.AfterFunc(p.cfg.HeadersTimeout, func() {
		if gotHeaders.Load() {
			cancel(errBodyTimeout)
		} else {
			cancel(errHeadersTimeout)
		}
	})
	var body io.Reader
	if req.Method == http.MethodPost {
		body = req.Body
	}
	out, err := http.NewRequestWithContext(ctx, req.Method, dest.String(), body)
	if err != nil {
		timer.Stop()
		cancel(nil)
		return nil, err
	}
	if req.Method == http.MethodPost {
		out.ContentLength = req.ContentLength
		for _, h := range []string{"Content-Type", "Content-Encoding"} {
			if v := req.Header.Get(h); v != "" {
				out.Header.Set(h, v)
			}
		}
	}
	for _, h := range forwardedRequestHeaders {
		if v := req.Header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	ae := req.Header.Get("Accept-Encoding")
	switch {
	case m == modeRead && acceptsGzip(ae):
		ae = "gzip"
	case m == modeRead || ae == "":
		ae = "identity"
	}
	out.Header.Set("Accept-Encoding", ae)
	if tok != "" {
		out.Header.Set("Authorization", "Bearer "+tok)
	}
	out.Header.Set("User-Agent", "pdslog")

	resp, err := p.client.Do(out)
	if err != nil {
		timer.Stop()
		cause := context.Cause(ctx)
		cancel(nil)
		return nil, p.requestError(req.Context(), t, err, cause)
	}
	gotHeaders.Store(true)
	timer.Reset(p.cfg.BodyTimeout)
	return &upstream{resp: resp, body: &idleReader{r: resp.Body, timer: timer, d: p.cfg.BodyTimeout},
		max: p.cfg.MaxResponseSize, target: t, cancel: cancel, ctx: ctx, timer: timer}, nil
}

// acceptsGzip reports whether an Accept-Encoding value accepts gzip.
func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if n := strings.ToLower(strings.TrimSpace(name)); n != "gzip" && n != "*" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok && (q == "0" || strings.Trim(q, "0.") == "") {
			continue
		}
		return true
	}
	return false
}

// refused is the answer when the SSRF guard refuses a service's URL or
// the address its name resolved to: the caller is told only that the call
// was refused (what a name resolves to inside the network is none of its
// business); the reason goes to the log.
func (p *Proxy) refused(t *Target, err error) *xrpc.Error {
	p.log.Warn("proxy: SSRF guard refused a service", "service", t.Ref(), "url", t.URL, "err", err)
	return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure",
		Message: fmt.Sprintf("proxying to %s was refused", t.Ref()), Err: err}
}

// requestError maps a failure to get the upstream's headers: the
// reference answers 502 UpstreamFailure for all of them.
func (p *Proxy) requestError(ctx context.Context, t *Target, err, cause error) error {
	switch {
	case errors.Is(err, ssrf.ErrForbiddenAddress):
		return p.refused(t, err)
	case errors.Is(cause, errHeadersTimeout):
		return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure",
			Message: fmt.Sprintf("Upstream service did not answer within %s", p.cfg.HeadersTimeout), Err: err}
	case ctx.Err() != nil:
		return context.Cause(ctx) // the client went away
	}
	p.log.Warn("proxy upstream unreachable", "service", t.Ref(), "url", t.URL, "err", err)
	return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: "Upstream service unreachable", Err: err}
}

// failure turns an upstream error answer (status >= 400) into this
// server's: the upstream's status (500 becomes 502 UpstreamFailure), its
// error name and message when it sent JSON, and its forwarded headers.
func (u *upstream) failure() *xrpc.Error {
	status := u.resp.StatusCode
	var payload struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if isJSON(u.resp.Header.Get("Content-Type")) != no {
		if b, err := decodeBody(io.LimitReader(u.body, maxErrorBody), u.resp.Header.Get("Content-Encoding"), maxErrorBody); err == nil {
			_ = json.Unmarshal(b, &payload)
		}
	}
	if status == http.StatusInternalServerError || status > 599 {
		status = http.StatusBadGateway
	}
	name := payload.Error
	if name == "" {
		name = statusName(status)
	}
	msg := payload.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	h := http.Header{}
	for _, k := range forwardedResponseHeaders {
		if v := u.resp.Header.Values(k); len(v) > 0 {
			h.Set(k, strings.Join(v, ","))
		}
	}
	return &xrpc.Error{Status: status, Name: name, Message: msg, Header: h}
}

// statusName is the XRPC error name of a status (ResponseType).
func statusName(status int) string {
	switch status {
	case 400:
		return "InvalidRequest"
	case 401:
		return "AuthenticationRequired"
	case 403:
		return "Forbidden"
	case 404:
		return "XRPCNotSupported"
	case 406:
		return "NotAcceptable"
	case 413:
		return "PayloadTooLarge"
	case 415:
		return "UnsupportedMediaType"
	case 429:
		return "RateLimitExceeded"
	case 501:
		return "MethodNotImplemented"
	case 502:
		return "UpstreamFailure"
	case 503:
		return "NotEnoughResources"
	case 504:
		return "UpstreamTimeout"
	}
	if status < 500 {
		return "InvalidRequest"
	}
	return "InternalServerError"
}

type tri int

const (
	no tri = iota
	yes
	unknown
)

// isJSON reports whether a content type is JSON (application/json or
// application/*+json); unknown when there is none.
func isJSON(ct string) tri {
	if ct == "" {
		return unknown
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return no
	}
	if mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return yes
	}
	return no
}

// writeHeaders copies an upstream answer's forwarded headers (content
// ones too when content is set).
func writeHeaders(dst, src http.Header, content bool) {
	if content {
		for _, k := range contentHeaders {
			if v := src.Get(k); v != "" {
				dst.Set(k, v)
			}
		}
	}
	for _, k := range forwardedResponseHeaders {
		if v := src.Values(k); len(v) > 0 {
			dst.Set(k, strings.Join(v, ","))
		}
	}
}

// relay streams an upstream answer to the client: status, forwarded
// headers and body, flushed as it arrives, never more than
// MaxResponseSize bytes. An answer that turns out too large or breaks
// off mid-body aborts the response, so the client cannot take it for a
// whole one.
func (p *Proxy) relay(c echo.Context, u *upstream) error {
	if u.resp.ContentLength > u.max {
		return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure",
			Message: fmt.Sprintf("Upstream response is larger than %d bytes", u.max)}
	}
	w := c.Response()
	writeHeaders(w.Header(), u.resp.Header, true)
	w.WriteHeader(u.resp.StatusCode)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	err := copyFlush(w, u.body, u.max)
	var cw clientWriteError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &cw):
		return nil // the client went away
	}
	cause := context.Cause(u.ctx)
	if errors.Is(cause, errBodyTimeout) {
		err = fmt.Errorf("no data for %s: %w", p.cfg.BodyTimeout, cause)
	}
	p.log.Warn("proxy: aborting a relayed answer", "service", u.target.Ref(), "err", err)
	panic(http.ErrAbortHandler)
}

type clientWriteError struct{ error }

// copyFlush copies src to w, flushing after each piece, and fails with
// errTooLarge past max bytes.
func copyFlush(w *echo.Response, src io.Reader, max int64) error {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			total += int64(n)
			if total > max {
				return errTooLarge
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return clientWriteError{err}
			}
			w.Flush()
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// decodeBody reads a body of at most max bytes (decoded), undoing a gzip
// content encoding.
func decodeBody(r io.Reader, encoding string, max int64) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("proxy: cannot decode content encoding %q", encoding)
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errTooLarge
	}
	return b, nil
}

// read reads a whole upstream body, decoded.
func (u *upstream) read() ([]byte, error) {
	if u.resp.ContentLength > u.max {
		return nil, errTooLarge
	}
	return decodeBody(u.body, u.resp.Header.Get("Content-Encoding"), u.max)
}

// writeBody answers with body (already decoded) in place of the
// upstream's, keeping its status and forwarded headers.
func writeBody(c echo.Context, u *upstream, body []byte, extra http.Header) error {
	w := c.Response()
	writeHeaders(w.Header(), u.resp.Header, false)
	for k, v := range extra {
		w.Header()[k] = v
	}
	ct := u.resp.Header.Get("Content-Type")
	if ct == "" {
		ct = echo.MIMEApplicationJSON
	}
	return c.Blob(u.resp.StatusCode, ct, body)
}
