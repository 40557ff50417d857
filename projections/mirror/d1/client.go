package d1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// D1's limits.
const (
	MaxParams     = 100       // bound parameters per statement
	MaxSQLBytes   = 100_000   // bytes of SQL text per statement
	MaxValueBytes = 2_000_000 // bytes per string or BLOB value, or row
)

// Defaults.
const (
	DefaultAPIBase        = "https://api.cloudflare.com/client/v4"
	DefaultBudget         = 600 // requests per DefaultBudgetWindow: half of Cloudflare's 1200
	DefaultBudgetWindow   = 5 * time.Minute
	DefaultMaxAttempts    = 8
	DefaultMinBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff     = time.Minute
	DefaultRequestTimeout = 90 * time.Second // D1 stops a query at 30 s
	// maxRetryAfter caps how long a retry-after makes a request wait
	// (Cloudflare's 429 lasts five minutes).
	maxRetryAfter = 6 * time.Minute
)

var (
	// ErrAuth is returned (wrapped) when Cloudflare refuses the token.
	ErrAuth = errors.New("d1: authentication failed")
	// ErrNotFound is returned (wrapped) for an unknown database or account.
	ErrNotFound = errors.New("d1: database not found")
	// ErrLimit is returned (wrapped) by Check for a statement over D1's limits.
	ErrLimit = errors.New("d1: over D1's limits")
)

// Options configure a Client.
type Options struct {
	APIBase    string // "" means DefaultAPIBase
	AccountID  string // required
	DatabaseID string // required
	Token      string // API token with D1 Edit permission; required

	// Budget is how many requests may start per BudgetWindow (smoothed: a
	// burst of a tenth of it, then a steady rate); 0 means DefaultBudget,
	// negative means no limit (tests, benchmarks).
	Budget       int
	BudgetWindow time.Duration // 0 means DefaultBudgetWindow

	MaxAttempts    int           // tries per request; 0 means DefaultMaxAttempts
	MinBackoff     time.Duration // first retry's delay cap; 0 means DefaultMinBackoff
	MaxBackoff     time.Duration // 0 means DefaultMaxBackoff
	RequestTimeout time.Duration // per attempt; 0 means DefaultRequestTimeout

	HTTPClient *http.Client // nil means a client of its own
	Logger     *slog.Logger // retries are logged here; nil means slog.Default()
}

// Statement is one SQL statement and its parameters.
type Statement struct {
	SQL    string
	Params []string
}

// Result is one statement's result.
type Result struct {
	Rows []map[string]any // numbers are json.Number
	Meta Meta
}

// Meta is the part of a result's meta the client reads.
type Meta struct {
	Changes     float64 `json:"changes"`
	RowsRead    float64 `json:"rows_read"`
	RowsWritten float64 `json:"rows_written"`
	Duration    float64 `json:"duration"`
}

// Client sends statements to one D1 database. It is safe for concurrent use.
type Client struct {
	endpoint string
	account  string
	database string
	token    string
	http     *http.Client
	logger   *slog.Logger
	budget   *budget

	maxAttempts         int
	minBackoff, maxBack time.Duration
	timeout             time.Duration
	requests, retries   atomic.Int64
	sleep               func(context.Context, time.Duration) error
}

// New returns a client; it sends no request.
func New(o Options) (*Client, error) {
	if o.AccountID == "" {
		return nil, errors.New("d1: no account id")
	}
	if o.DatabaseID == "" {
		return nil, errors.New("d1: no database id")
	}
	if o.Token == "" {
		return nil, errors.New("d1: no API token")
	}
	base := o.APIBase
	if base == "" {
		base = DefaultAPIBase
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("d1: bad API base URL %q", base)
	}
	c := &Client{
		endpoint: strings.TrimSuffix(base, "/") + "/accounts/" + url.PathEscape(o.AccountID) +
			"/d1/database/" + url.PathEscape(o.DatabaseID) + "/query",
		account: o.AccountID, database: o.DatabaseID, token: o.Token,
		http: o.HTTPClient, logger: o.Logger,
		maxAttempts: o.MaxAttempts, minBackoff: o.MinBackoff, maxBack: o.MaxBackoff, timeout: o.RequestTimeout,
		sleep: sleepCtx,
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	c.logger = c.logger.With("component", "d1")
	if c.maxAttempts <= 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.minBackoff <= 0 {
		c.minBackoff = DefaultMinBackoff
	}
	if c.maxBack <= 0 {
		c.maxBack = DefaultMaxBackoff
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRequestTimeout
	}
	if o.Budget >= 0 {
		n, w := o.Budget, o.BudgetWindow
		if n == 0 {
			n = DefaultBudget
		}
		if w <= 0 {
			w = DefaultBudgetWindow
		}
		c.budget = newBudget(n, w)
	}
	return c, nil
}

// Requests is how many HTTP requests the client has sent, retries included.
func (c *Client) Requests() int64 { return c.requests.Load() }

// Retries is how many of those were retries.
func (c *Client) Retries() int64 { return c.retries.Load() }

// Check reports whether s keeps to D1's per-statement limits.
func Check(s Statement) error {
	if len(s.Params) > MaxParams {
		return fmt.Errorf("%w: %d parameters (max %d) in %s", ErrLimit, len(s.Params), MaxParams, abbrev(s.SQL))
	}
	if len(s.SQL) > MaxSQLBytes {
		return fmt.Errorf("%w: %d bytes of SQL (max %d) in %s", ErrLimit, len(s.SQL), MaxSQLBytes, abbrev(s.SQL))
	}
	for i, p := range s.Params {
		if len(p) > MaxValueBytes {
			return fmt.Errorf("%w: parameter %d is %d bytes (max %d) in %s", ErrLimit, i+1, len(p), MaxValueBytes, abbrev(s.SQL))
		}
	}
	return nil
}

// Batch runs stmts in one request (a D1 batch: one transaction) and
// returns their results in order.
func (c *Client) Batch(ctx context.Context, stmts []Statement) ([]Result, error) {
	if len(stmts) == 0 {
		return nil, nil
	}
	for _, s := range stmts {
		if err := Check(s); err != nil {
			return nil, err
		}
	}
	var body any
	if len(stmts) == 1 {
		body = wireStatement{SQL: stmts[0].SQL, Params: stmts[0].Params}
	} else {
		b := wireBatch{Batch: make([]wireStatement, len(stmts))}
		for i, s := range stmts {
			b.Batch[i] = wireStatement{SQL: s.SQL, Params: s.Params}
		}
		body = b
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("d1: encode request: %w", err)
	}
	res, err := c.do(ctx, raw, stmts)
	if err != nil {
		return nil, err
	}
	if len(res) != len(stmts) {
		return nil, fmt.Errorf("d1: %d results for %d statements", len(res), len(stmts))
	}
	return res, nil
}

// Exec runs sql, which may hold several statements separated by
// semicolons (D1 runs them as one batch), and returns the rows of the last
// statement's result. It implements migrations.Executor.
func (c *Client) Exec(ctx context.Context, sql string) ([]map[string]any, error) {
	if len(sql) > MaxSQLBytes {
		return nil, fmt.Errorf("%w: %d bytes of SQL (max %d)", ErrLimit, len(sql), MaxSQLBytes)
	}
	raw, err := json.Marshal(wireStatement{SQL: sql})
	if err != nil {
		return nil, err
	}
	res, err := c.do(ctx, raw, []Statement{{SQL: sql}})
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[len(res)-1].Rows, nil
}

type wireStatement struct {
	SQL    string   `json:"sql"`
	Params []string `json:"params,omitempty"`
}

type wireBatch struct {
	Batch []wireStatement `json:"batch"`
}

type envelope struct {
	Result []struct {
		Results []map[string]any `json:"results"`
		Success *bool            `json:"success"`
		Meta    json.RawMessage  `json:"meta"`
	} `json:"result"`
	Success  bool      `json:"success"`
	Errors   []Message `json:"errors"`
	Messages []Message `json:"messages"`
}

// Message is an error or message of Cloudflare's envelope.
type Message struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Error is a request Cloudflare answered with a failure.
type Error struct {
	Status     int       // HTTP status
	Errors     []Message // the envelope's errors
	Statements []string  // the request's distinct statements (SQL text)
	retryable  bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "d1: HTTP %d", e.Status)
	for _, m := range e.Errors {
		fmt.Fprintf(&b, ": %d %s", m.Code, m.Message)
	}
	if len(e.Statements) == 1 {
		fmt.Fprintf(&b, "; statement: %s", abbrev(e.Statements[0]))
	} else if len(e.Statements) > 1 {
		fmt.Fprintf(&b, "; in a batch of these statements:")
		for i, s := range e.Statements {
			if i == 12 {
				fmt.Fprintf(&b, "\n  … and %d more", len(e.Statements)-i)
				break
			}
			fmt.Fprintf(&b, "\n  %s", abbrev(s))
		}
	}
	return b.String()
}

// Temporary reports whether err is worth trying again later: the API was
// unreachable, rate limited or failing (5xx) through every retry.
func Temporary(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.retryable
	}
	var ne *netError
	return errors.As(err, &ne)
}

// netError is a request that got no HTTP answer.
type netError struct{ err error }

func (e *netError) Error() string { return "d1: " + e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

func abbrev(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func distinctSQL(stmts []Statement) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range stmts {
		if !seen[s.SQL] {
			seen[s.SQL] = true
			out = append(out, s.SQL)
		}
	}
	return out
}

// do sends body, retrying what may succeed later.
func (c *Client) do(ctx context.Context, body []byte, stmts []Statement) ([]Result, error) {
	for attempt := 1; ; attempt++ {
		if c.budget != nil {
			if err := c.budget.wait(ctx, c.sleep); err != nil {
				return nil, err
			}
		}
		res, retryAfter, err := c.once(ctx, body, stmts)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if !Temporary(err) {
			return nil, err
		}
		if attempt >= c.maxAttempts {
			return nil, fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		// Full jitter, but never sooner than the server asked.
		wait := rand.N(min(c.maxBack, c.minBackoff<<min(attempt-1, 20)) + 1)
		if retryAfter > 0 {
			wait = min(retryAfter, maxRetryAfter) + rand.N(c.minBackoff+1)
		}
		c.retries.Add(1)
		c.logger.Warn("d1 request failed; retrying", "err", err, "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// once sends one request. It returns the retry-after the server asked for.
func (c *Client) once(ctx context.Context, body []byte, stmts []Statement) ([]Result, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("d1: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message would repeat the URL; the error is enough
		}
		return nil, 0, &netError{err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, &netError{fmt.Errorf("read response: %w", err)}
	}
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"))
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	decErr := dec.Decode(&env)
	st := resp.StatusCode
	if st == http.StatusOK && decErr == nil && env.Success {
		out := make([]Result, len(env.Result))
		for i, r := range env.Result {
			if r.Success != nil && !*r.Success {
				return nil, 0, &Error{Status: st, Errors: []Message{{Message: fmt.Sprintf("statement %d did not succeed", i+1)}}, Statements: distinctSQL(stmts)}
			}
			out[i].Rows = r.Results
			if len(r.Meta) > 0 {
				_ = json.Unmarshal(r.Meta, &out[i].Meta) // lenient: live D1 adds fields
			}
		}
		return out, 0, nil
	}
	e := &Error{Status: st, Errors: env.Errors}
	if decErr != nil && len(e.Errors) == 0 {
		e.Errors = []Message{{Message: "unexpected response: " + abbrev(string(raw))}}
	}
	switch {
	case st == http.StatusTooManyRequests || st >= 500:
		e.retryable = true
		return nil, retryAfter, e
	case st == http.StatusUnauthorized || st == http.StatusForbidden || hasCode(env.Errors, 10000, 9106, 9109, 6003, 6111):
		return nil, 0, fmt.Errorf("%w for account %s (%v): check the API token (CLOUDFLARE_API_TOKEN): it needs D1 Edit permission on this account", ErrAuth, c.account, e)
	case st == http.StatusNotFound:
		return nil, 0, fmt.Errorf("%w: database %s in account %s (%v): check PDS_D1_DATABASE_ID and CLOUDFLARE_ACCOUNT_ID", ErrNotFound, c.database, c.account, e)
	}
	e.Statements = distinctSQL(stmts)
	return nil, 0, e
}

func hasCode(ms []Message, codes ...int) bool {
	for _, m := range ms {
		for _, c := range codes {
			if m.Code == c {
				return true
			}
		}
	}
	return false
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// budget is a token bucket: n requests per window on average, in bursts
// of at most a tenth of n.
type budget struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBudget(n int, window time.Duration) *budget {
	burst := max(1, float64(n)/10)
	return &budget{rate: float64(n) / window.Seconds(), burst: burst, tokens: burst, last: time.Now()}
}

func (b *budget) wait(ctx context.Context, sleep func(context.Context, time.Duration) error) error {
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		if err := sleep(ctx, need); err != nil {
			return err
		}
	}
}

// Int reads an integer column value (a json.Number, or a string of digits).
func Int(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil || f != float64(int64(f)) {
			return 0, fmt.Errorf("d1: %q is not an integer", x)
		}
		return int64(f), nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	case nil:
		return 0, errors.New("d1: NULL where an integer was expected")
	}
	return 0, fmt.Errorf("d1: %T is not an integer", v)
}
