package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// rawExchange sends head (a request line and headers, without the blank
// line) on a new connection to the test server, then body, and reads the
// answer, giving up after timeout.
func rawExchange(t *testing.T, env *apitest.Env, head string, body []byte, timeout time.Duration) (*http.Response, []byte, error) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.Server.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, head+"\r\n\r\n"); err != nil {
		return nil, nil, err
	}
	if _, err := conn.Write(body); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// A declared Content-Length over a route's limit is answered 413 at once,
// before any of the body is read: the server does not wait for a
// terabyte (issue 14, item 4).
func TestDeclaredLengthOverLimitRefusedBeforeReading(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	for _, tt := range []struct {
		path, auth string
		length     int64
	}{
		{"/xrpc/com.atproto.server.createSession", "", 1_000_000_000_000},
		{"/xrpc/com.atproto.repo.createRecord", "Bearer " + a.Token, 1_000_000_000_000},
		{"/xrpc/com.atproto.repo.createRecord", "", 1_000_001}, // over MaxRecordBody, whoever asks
		{"/xrpc/com.atproto.server.createAccount", "", 150<<10 + 1},
		{"/xrpc/com.atproto.repo.uploadBlob", "Bearer " + a.Token, apitest.BlobMaxSize + 1},
		{"/xrpc/app.bsky.feed.sendInteractions", "", 1_000_000_000_000}, // the catch-all (proxied procedures)
	} {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: pds\r\nContent-Type: application/json\r\nContent-Length: %d", tt.path, tt.length)
		if tt.auth != "" {
			head += "\r\nAuthorization: " + tt.auth
		}
		start := time.Now()
		resp, body, err := rawExchange(t, env, head, nil, 5*time.Second)
		if err != nil {
			t.Errorf("%s with Content-Length %d: no answer: %v", tt.path, tt.length, err)
			continue
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(body, []byte("PayloadTooLarge")) {
			t.Errorf("%s with Content-Length %d: %d %s, want 413 PayloadTooLarge", tt.path, tt.length, resp.StatusCode, body)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: the 413 took %s", tt.path, took)
		}
	}
	// Within the limit the body is read as before.
	if r := env.Do("POST", "/xrpc/com.atproto.server.createSession", nil, "", map[string]string{"identifier": a.Handle.String(), "password": a.Password}); r.Status != 200 {
		t.Fatalf("createSession: %d %s", r.Status, r.Body)
	}
}

// A body trickled in slower than the route's deadline is cut off with 408
// (and the connection closed), JSON and uploads each on their own deadline
// (issue 14, item 4).
func TestTrickledBodyCutOff(t *testing.T) {
	const bodyTimeout = 700 * time.Millisecond
	env := apitest.New(t, func(c *api.Config) { c.BodyTimeout, c.UploadTimeout = bodyTimeout, 2*bodyTimeout })
	a := env.CreateAccount()
	addr := strings.TrimPrefix(env.Server.URL, "http://")
	trickle := func(path, auth, contentType string, timeout time.Duration) (int, time.Duration) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: pds\r\nContent-Type: %s\r\nContent-Length: 1000\r\n", path, contentType)
		if auth != "" {
			fmt.Fprintf(conn, "Authorization: %s\r\n", auth)
		}
		io.WriteString(conn, "\r\n")
		answered := make(chan int, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				answered <- 0
				return
			}
			resp.Body.Close()
			answered <- resp.StatusCode
		}()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case st := <-answered:
				return st, time.Since(start)
			case <-tick.C:
				if time.Since(start) > timeout {
					return -1, time.Since(start)
				}
				_, _ = conn.Write([]byte("{"))
			}
		}
	}
	for _, tt := range []struct {
		path, auth, ct string
		deadline       time.Duration
	}{
		{"/xrpc/com.atproto.server.createSession", "", "application/json", bodyTimeout},
		{"/xrpc/com.atproto.repo.uploadBlob", "Bearer " + a.Token, "image/png", 2 * bodyTimeout},
	} {
		st, took := trickle(tt.path, tt.auth, tt.ct, 10*time.Second)
		if st != http.StatusRequestTimeout {
			t.Errorf("%s trickled: status %d after %s, want 408 after %s", tt.path, st, took.Round(time.Millisecond), tt.deadline)
		} else if took < tt.deadline || took > tt.deadline+2*time.Second {
			t.Errorf("%s trickled: cut off after %s, want %s", tt.path, took.Round(time.Millisecond), tt.deadline)
		}
	}

}

// X-Forwarded-For and X-Real-IP are not believed from a peer that is not a
// configured proxy: rotating them does not escape the login lockout, nor
// put the lockout on someone else's address (issue 14, item 6).
func TestForwardedHeadersIgnoredFromUntrustedPeers(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	login := func(password string, headers ...string) *apitest.Response {
		return env.Request("POST", "/xrpc/com.atproto.server.createSession", nil, "", map[string]string{"identifier": a.Handle.String(), "password": password}, headers...)
	}
	for i := range 5 {
		if r := login("wrong", "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i), "X-Real-IP", fmt.Sprintf("203.0.113.%d", i)); r.Status != 401 {
			t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if r := login("wrong", "X-Forwarded-For", "198.51.100.99"); r.Status != 429 {
		t.Fatalf("a sixth guess under a new X-Forwarded-For: %d %s, want 429 (the lockout is on the connection's address)", r.Status, r.Body)
	}
}

// Behind a configured proxy the client is the first untrusted address from
// the right of X-Forwarded-For; the access log has the client, the peer
// and the header apart.
func TestForwardedHeadersFromTrustedProxy(t *testing.T) {
	var log eventlogtest.SyncBuffer
	env := apitest.New(t, func(c *api.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.Logger = slog.New(slog.NewJSONHandler(&log, nil))
	})
	a := env.CreateAccount()
	login := func(password, xff string) *apitest.Response {
		return env.Request("POST", "/xrpc/com.atproto.server.createSession", nil, "", map[string]string{"identifier": a.Handle.String(), "password": password},
			"X-Forwarded-For", xff)
	}
	// The client claims 192.0.2.66; the proxy appends the address it saw.
	for range 5 {
		if r := login("wrong", "192.0.2.66, 198.51.100.7"); r.Status != 401 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	if r := login("wrong", "192.0.2.1, 198.51.100.7"); r.Status != 429 {
		t.Fatalf("198.51.100.7 after 5 failures: %d, want 429", r.Status)
	}
	if r := login(a.Password, "198.51.100.8"); r.Status != 200 {
		t.Fatalf("another client through the proxy: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(log.String(), `"remote_ip":"198.51.100.8","peer":"127.0.0.1","x_forwarded_for":"198.51.100.8"`) {
		t.Errorf("access log lacks the client, peer and header apart:\n%s", log.String())
	}
}

// The reference's global limit, 3000 requests per 5 minutes per address,
// on every XRPC method but getRepo and the firehose; every limited answer
// carries the RateLimit-* headers, not only the 429 (issue 14, item 7).
func TestGlobalLimitPerAddress(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	c := &http.Client{}
	get := func(path string) *http.Response {
		resp, err := c.Get(env.Server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	const describe = "/xrpc/com.atproto.server.describeServer"
	for i := 1; i <= ratelimit.LimitGlobalIP.Points; i++ {
		resp := get(describe)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		if i == 1 || i == ratelimit.LimitGlobalIP.Points {
			h := resp.Header
			if h.Get("RateLimit-Limit") != "3000" || h.Get("RateLimit-Remaining") != strconv.Itoa(3000-i) || h.Get("RateLimit-Policy") != "3000;w=300" {
				t.Fatalf("request %d: RateLimit headers %v", i, h)
			}
		}
	}
	resp := get(describe)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("request 3001: %d %v", resp.StatusCode, resp.Header)
	}
	// Other methods share the budget; getRepo, the firehose and health do not.
	if r := env.Do("GET", "/xrpc/com.atproto.repo.describeRepo", url.Values{"repo": {a.DID.String()}}, "", nil); r.Status != 429 {
		t.Errorf("describeRepo after the budget: %d", r.Status)
	}
	if r := env.Do("GET", "/xrpc/com.example.unknown", nil, "", nil); r.Status != 429 {
		t.Errorf("an unknown method after the budget: %d", r.Status)
	}
	if r := env.Do("GET", "/xrpc/com.atproto.sync.getRepo", url.Values{"did": {a.DID.String()}}, "", nil); r.Status != 200 || r.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("getRepo after the budget: %d, RateLimit-Limit %q", r.Status, r.Header.Get("RateLimit-Limit"))
	}
	if r := env.Do("GET", "/xrpc/_health", nil, "", nil); r.Status != 200 {
		t.Errorf("_health after the budget: %d", r.Status)
	}
	// The window ends.
	env.Clock.Add(ratelimit.LimitGlobalIP.Window)
	if resp := get(describe); resp.StatusCode != 200 {
		t.Errorf("after the window: %d", resp.StatusCode)
	}
}

// createAccount: 100 per 5 minutes per address, counted before the
// request is looked at (issue 14, item 7).
func TestCreateAccountLimitPerAddress(t *testing.T) {
	env := apitest.New(t)
	body := map[string]string{"handle": "new.test", "email": "n@example.com", "password": "hunter22hunter"} // no invite: 400
	for i := 1; i <= ratelimit.LimitCreateAccount.Points; i++ {
		r := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", body)
		if r.Status == 429 || r.Header.Get("RateLimit-Limit") != "100" {
			t.Fatalf("createAccount %d: %d, RateLimit-Limit %q", i, r.Status, r.Header.Get("RateLimit-Limit"))
		}
	}
	if r := env.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, "", body); r.Status != 429 || r.ErrorName() != "RateLimitExceeded" {
		t.Fatalf("createAccount 101: %d %s", r.Status, r.Body)
	}
}

// Wrong admin passwords lock the address out of admin credentials: ten in a
// row, then every admin attempt from it is refused for 15 minutes, right
// password or not, on admin methods and on admin reads of the sync methods
// alike (issue 14, item 7).
func TestAdminPasswordGuessesThrottled(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	const status = "/xrpc/com.atproto.admin.getSubjectStatus"
	q := url.Values{"did": {a.DID.String()}}
	for i := range ratelimit.AdminMaxFailures {
		path, query := status, q
		if i%2 == 1 {
			path, query = "/xrpc/com.atproto.sync.getRepoStatus", q
		}
		if r := env.Do("GET", path, query, apitest.AdminAuth(fmt.Sprintf("guess-%d", i)), nil); r.Status != 401 {
			t.Fatalf("guess %d on %s: %d %s", i+1, path, r.Status, r.Body)
		}
	}
	for _, path := range []string{status, "/xrpc/com.atproto.sync.getRepoStatus"} {
		r := env.Do("GET", path, q, apitest.AdminAuth(apitest.AdminPassword), nil)
		if r.Status != 429 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("the right password on %s after %d wrong ones: %d %s, want 429", path, ratelimit.AdminMaxFailures, r.Status, r.Body)
		}
	}
	// Requests without admin credentials are not affected.
	if r := env.Do("GET", "/xrpc/com.atproto.sync.getRepoStatus", q, "", nil); r.Status != 200 {
		t.Fatalf("getRepoStatus without credentials: %d", r.Status)
	}
	env.Clock.Add(ratelimit.AdminLockout)
	if r := env.Do("GET", status, q, apitest.AdminAuth(apitest.AdminPassword), nil); r.Status != 200 {
		t.Fatalf("after the lockout: %d %s", r.Status, r.Body)
	}
}

// Every route with a limit of its own sends the RateLimit-* headers of
// the most binding limit on success too, as the reference does (issue 14,
// item 7).
func TestRateLimitHeadersOnSuccess(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	r := env.Do("POST", "/xrpc/com.atproto.server.createSession", nil, "", map[string]string{"identifier": a.Handle.String(), "password": a.Password})
	// createSession's 30 per 5 minutes binds before the global 3000.
	if r.Status != 200 || r.Header.Get("RateLimit-Limit") != "30" || r.Header.Get("RateLimit-Remaining") != "29" || r.Header.Get("RateLimit-Policy") != "30;w=300" {
		t.Fatalf("createSession: %d, headers %v", r.Status, r.Header)
	}
	r = env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post",
		"record": map[string]any{"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-01-01T00:00:00Z"}})
	// The global limit (2998 left) binds before the account's write
	// budget (4997 of 5000 points left).
	if r.Status != 200 || r.Header.Get("RateLimit-Limit") != "3000" || r.Header.Get("RateLimit-Remaining") != "2998" {
		t.Fatalf("createRecord: %d, headers %v", r.Status, r.Header)
	}
	// uploadBlob's 30 per minute binds.
	resp := env.Send("POST", "/xrpc/com.atproto.repo.uploadBlob", nil, a.Token, []byte("hello"), "Content-Type", "text/plain")
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Limit") != "30" || resp.Header.Get("RateLimit-Policy") != "30;w=60" {
		t.Fatalf("uploadBlob: %d, headers %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "RateLimit-Remaining") {
		t.Errorf("RateLimit headers not exposed to browsers: %v", resp.Header)
	}
}

// At most Firehose.MaxPerAddress subscriptions per client address; one more
// gets 429 before the upgrade, and a place frees up when one ends (issue
// 14, item 4).
func TestFirehoseSubscribersPerAddress(t *testing.T) {
	env := apitest.New(t, func(c *api.Config) { c.Firehose.MaxPerAddress = 2 })
	addr := strings.TrimPrefix(env.Server.URL, "http://")
	upgrade := func() (net.Conn, int) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /xrpc/com.atproto.sync.subscribeRepos HTTP/1.1\r\nHost: pds\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Time{})
		return conn, resp.StatusCode
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 2 {
		c, st := upgrade()
		held = append(held, c)
		if st != http.StatusSwitchingProtocols {
			t.Fatalf("subscription %d: %d", i+1, st)
		}
	}
	c, st := upgrade()
	c.Close()
	if st != http.StatusTooManyRequests {
		t.Fatalf("a third subscription from the address: %d, want 429", st)
	}
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, st := upgrade()
		if st == http.StatusSwitchingProtocols {
			held = append(held, c)
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("no place after one subscription ended: %d", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
