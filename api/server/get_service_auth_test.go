package server_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/apitest"
)

func TestGetServiceAuth(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	r := env.Do("GET", "/xrpc/com.atproto.server.getServiceAuth", url.Values{"aud": {"did:web:appview.example#bsky_appview"}, "lxm": {"app.bsky.feed.getTimeline"}}, a.Token, nil)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var out struct{ Token string }
	r.JSON(t, &out)
	parts := strings.Split(out.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", out.Token)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss, Aud, Lxm string
		Exp           int64
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Iss != a.DID.String() || claims.Aud != "did:web:appview.example#bsky_appview" || claims.Lxm != "app.bsky.feed.getTimeline" ||
		claims.Exp > time.Now().Add(61*time.Second).Unix() {
		t.Fatalf("claims %s", payload)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	pub, _ := a.Key.PublicKey()
	if err := pub.HashAndVerify([]byte(parts[0]+"."+parts[1]), sig); err != nil {
		t.Fatalf("signature does not verify under the repo key: %v", err)
	}
	refused := []url.Values{
		{"aud": {"did:web:x.example"}, "lxm": {"com.atproto.server.createAppPassword"}},                                                 // protected method
		{"aud": {"did:web:x.example"}, "lxm": {"app.bsky.feed.getTimeline"}, "exp": {fmt.Sprint(time.Now().Add(2 * time.Hour).Unix())}}, // too long
		{"aud": {"did:web:x.example"}, "exp": {fmt.Sprint(time.Now().Add(10 * time.Minute).Unix())}},                                    // no lxm, > 1 min
		{"aud": {"not-a-did"}},
	}
	for _, q := range refused {
		if r := env.Do("GET", "/xrpc/com.atproto.server.getServiceAuth", q, a.Token, nil); r.Status < 400 || r.Status >= 500 {
			t.Errorf("%v: %d %s", q, r.Status, r.Body)
		}
	}
	if r := env.Do("GET", "/xrpc/com.atproto.server.getServiceAuth", url.Values{"aud": {"did:web:x.example"}}, "", nil); r.Status != 401 {
		t.Errorf("without auth: %d", r.Status)
	}
}
