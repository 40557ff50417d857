package repo_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/mst/car"
)

// migrationPair is an old host with an account and a new host that knows
// the account's DID document (its key), as the PLC directory would say.
type migrationPair struct {
	old, new *apitest.Env
	a, b     *apitest.Account // accounts on the old host
}

func newPair(t *testing.T, po func(*pds.Options), cfg ...func(*api.Config)) *migrationPair {
	t.Helper()
	m := &migrationPair{old: apitest.New(t), new: apitest.NewPDS(t, po, cfg...)}
	m.a, m.b = m.old.CreateAccount(), m.old.CreateAccount()
	m.new.CreateInvite("migrate-invite", 100)
	for _, acct := range []*apitest.Account{m.a, m.b} {
		pub, _ := acct.Key.PublicKey()
		m.new.Directory.Register(acct.DID, acct.Handle, pub, "https://old.example")
	}
	return m
}

func serviceAuth(t *testing.T, key atcrypto.PrivateKey, iss syntax.DID, aud, lxm string, exp time.Time) string {
	t.Helper()
	tok, err := auth.ServiceJWT(key, iss, aud, lxm, exp)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// arrive creates a's account on the new host with service auth and
// returns its session token there.
func (m *migrationPair) arrive(t *testing.T, a *apitest.Account, handle string) string {
	t.Helper()
	tok := serviceAuth(t, a.Key, a.DID, apitest.Service.DID().String(), "com.atproto.server.createAccount", time.Now().Add(time.Minute))
	r := m.new.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, tok, map[string]any{
		"did": a.DID, "handle": handle, "email": handle + "@example.com", "password": "new-password", "inviteCode": "migrate-invite"})
	if r.Status != 200 {
		t.Fatalf("createAccount with did: %d %s", r.Status, r.Body)
	}
	var out struct{ AccessJwt, DID string }
	r.JSON(t, &out)
	if out.DID != a.DID.String() {
		t.Fatalf("createAccount made %s, not %s", out.DID, a.DID)
	}
	return out.AccessJwt
}

func posts(t *testing.T, env *apitest.Env, a *apitest.Account, n int, prefix string) {
	t.Helper()
	for i := range n {
		r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post",
			"record": map[string]any{"text": fmt.Sprintf("%s %d", prefix, i), "createdAt": "2026-12-01T00:00:00.000Z"}})
		if r.Status != 200 {
			t.Fatalf("createRecord: %d %s", r.Status, r.Body)
		}
	}
}

func getRepo(t *testing.T, env *apitest.Env, did syntax.DID, token ...string) []byte {
	t.Helper()
	tok := ""
	if len(token) > 0 {
		tok = token[0]
	}
	r := env.Do("GET", "/xrpc/com.atproto.sync.getRepo", url.Values{"did": {did.String()}}, tok, nil)
	if r.Status != 200 {
		t.Fatalf("getRepo: %d %s", r.Status, r.Body)
	}
	return r.Body
}

func importCAR(env *apitest.Env, token string, body []byte) *apitest.Response {
	return env.Request("POST", "/xrpc/com.atproto.repo.importRepo", nil, token, body, "Content-Type", "application/vnd.ipld.car")
}

// records is a repo CAR's path -> record CID, checking the commit signature
// against key.
func records(t *testing.T, carBytes []byte, key atcrypto.PrivateKey) map[string]string {
	t.Helper()
	commit, repo, err := indigorepo.LoadRepoFromCAR(context.Background(), bytes.NewReader(carBytes))
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		pub, _ := key.PublicKey()
		if err := commit.VerifySignature(pub); err != nil {
			t.Fatalf("commit signature: %v", err)
		}
	}
	out := map[string]string{}
	if err := repo.MST.Walk(func(k []byte, v cid.Cid) error { out[string(k)] = v.String(); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// An account arrives with createAccount + service auth (deactivated, no
// repo), its repo is imported whole (more records than one commit holds),
// then imported again after changes on the old host: the new host's repo
// is the old one each time, record for record, under the new host's key.
func TestImportRepo(t *testing.T) {
	m := newPair(t, nil)
	posts(t, m.old, m.a, 450, "first")
	tok := m.arrive(t, m.a, "arrived.test")
	var st struct {
		Active bool   `json:"active"`
		Status string `json:"status"`
	}
	m.new.Do("GET", "/xrpc/com.atproto.server.getSession", nil, tok, nil).JSON(t, &st)
	if st.Active || st.Status != "deactivated" {
		t.Fatalf("a migrating account starts %+v, want deactivated", st)
	}
	if r := m.new.Do("GET", "/xrpc/com.atproto.sync.getLatestCommit", url.Values{"did": {m.a.DID.String()}}, tok, nil); r.Status != 400 || r.ErrorName() != "RepoNotFound" {
		t.Fatalf("repo before the import: %d %s", r.Status, r.Body)
	}
	want := records(t, getRepo(t, m.old, m.a.DID), m.a.Key)
	if r := importCAR(m.new, tok, getRepo(t, m.old, m.a.DID)); r.Status != 200 {
		t.Fatalf("importRepo: %d %s", r.Status, r.Body)
	}
	newKey, err := m.new.PDS.SigningKey(context.Background(), m.a.DID)
	if err != nil {
		t.Fatal(err)
	}
	if got := records(t, getRepo(t, m.new, m.a.DID, tok), newKey); !equalMaps(got, want) || len(got) != 450 {
		t.Fatalf("imported %d records, the old repo has %d (or they differ)", len(got), len(want))
	}
	// Re-import after the old repo changed (new, updated, deleted records):
	// the new host's repo is replaced by it.
	posts(t, m.old, m.a, 30, "second")
	var list struct{ Records []struct{ URI string } }
	m.old.Do("GET", "/xrpc/com.atproto.repo.listRecords", url.Values{"repo": {m.a.DID.String()}, "collection": {"app.bsky.feed.post"}, "limit": {"20"}}, "", nil).JSON(t, &list)
	for _, rec := range list.Records[:10] {
		u, _ := syntax.ParseATURI(rec.URI)
		m.old.Do("POST", "/xrpc/com.atproto.repo.deleteRecord", nil, m.a.Token, map[string]any{"repo": m.a.DID, "collection": "app.bsky.feed.post", "rkey": u.RecordKey()})
	}
	want = records(t, getRepo(t, m.old, m.a.DID), nil)
	if r := importCAR(m.new, tok, getRepo(t, m.old, m.a.DID)); r.Status != 200 {
		t.Fatalf("re-import: %d %s", r.Status, r.Body)
	}
	if got := records(t, getRepo(t, m.new, m.a.DID, tok), newKey); !equalMaps(got, want) {
		t.Fatalf("after re-import %d records, want %d", len(got), len(want))
	}
	// The projections agree with the repo: listRecords sees every record.
	n, err := m.new.Records.Count(context.Background(), m.a.DID)
	if err != nil || n != len(want) {
		t.Fatalf("records projection holds %d, the repo %d (%v)", n, len(want), err)
	}
}

// An import flushes the log's and the projections' memtables every
// ImportFlushBytes of blocks, so that the memory it fills is bounded by
// that, not by the repo's size (BenchmarkImport in cmd/pdslog measures
// the RSS).
func TestImportFlushesMemtables(t *testing.T) {
	m := newPair(t, func(o *pds.Options) { o.ImportFlushBytes = 16 << 10 })
	posts(t, m.old, m.a, 300, "flushed")
	tok := m.arrive(t, m.a, "flushed.test")
	logBefore, storeBefore := m.new.PDS.Log.Metrics().Flush.Count, m.new.PDS.Store.Metrics().Flush.Count
	car := getRepo(t, m.old, m.a.DID)
	if r := importCAR(m.new, tok, car); r.Status != 200 {
		t.Fatalf("importRepo: %d %s", r.Status, r.Body)
	}
	logFlushes := m.new.PDS.Log.Metrics().Flush.Count - logBefore
	storeFlushes := m.new.PDS.Store.Metrics().Flush.Count - storeBefore
	// The blocks committed are at least the CAR's records: a flush per
	// 16 KiB of them, less some slack for the last.
	want := int64(len(car)/(16<<10)) - 2
	if logFlushes < want || storeFlushes < want {
		t.Fatalf("an import of a %d-byte CAR flushed the log %d times and the projections %d times, want at least %d each",
			len(car), logFlushes, storeFlushes, want)
	}
	if got := records(t, getRepo(t, m.new, m.a.DID, tok), nil); len(got) != 300 {
		t.Fatalf("imported %d records, want 300", len(got))
	}
}

// Every bad CAR is refused with a 400 naming what is wrong, and the
// account stays as it was (no repo).
func TestImportRepoRefuses(t *testing.T) {
	m := newPair(t, func(o *pds.Options) { o.MaxImportBlocks = 300 }, func(c *api.Config) { c.MaxImportSize = 200 << 10 })
	posts(t, m.old, m.a, 20, "post")
	posts(t, m.old, m.b, 3, "other")
	tok := m.arrive(t, m.a, "arrived.test")
	good := getRepo(t, m.old, m.a.DID)
	roots, blocks, err := car.Unmarshal(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	remarshal := func(roots []cid.Cid, bs []car.Block) []byte {
		b, err := car.Marshal(roots, bs...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The commit, re-signed (or not) and re-encoded.
	recommit := func(mut func(c *indigorepo.Commit)) []byte {
		var c indigorepo.Commit
		for _, b := range blocks {
			if b.CID.Equals(roots[0]) {
				if err := c.UnmarshalCBOR(bytes.NewReader(b.Data)); err != nil {
					t.Fatal(err)
				}
			}
		}
		mut(&c)
		var buf bytes.Buffer
		if err := c.MarshalCBOR(&buf); err != nil {
			t.Fatal(err)
		}
		nc, err := cid.V1Builder{Codec: cid.DagCBOR, MhType: 0x12}.Sum(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		bs := []car.Block{{CID: nc, Data: buf.Bytes()}}
		for _, b := range blocks {
			if !b.CID.Equals(roots[0]) {
				bs = append(bs, b)
			}
		}
		return remarshal([]cid.Cid{nc}, bs)
	}
	other, _ := atcrypto.GeneratePrivateKeyK256()
	var recordBlock cid.Cid // a record's block: the last post's
	for _, b := range blocks {
		if !b.CID.Equals(roots[0]) && b.CID.Type() == cid.DagCBOR && bytes.Contains(b.Data, []byte("post 19")) {
			recordBlock = b.CID
		}
	}
	if !recordBlock.Defined() {
		t.Fatal("no record block found")
	}
	var withoutRecord, dup []car.Block
	for _, b := range blocks {
		if !b.CID.Equals(recordBlock) {
			withoutRecord = append(withoutRecord, b)
		}
	}
	dup = append(append(dup, blocks...), blocks[len(blocks)-1])
	var bomb []car.Block
	for i := range 400 {
		c, _ := cid.V1Builder{Codec: cid.Raw, MhType: 0x12}.Sum([]byte{byte(i), byte(i >> 8)})
		bomb = append(bomb, car.Block{CID: c, Data: []byte{byte(i), byte(i >> 8)}})
	}
	big := make([]car.Block, 0, 300)
	for i := range 250 {
		data := bytes.Repeat([]byte{byte(i)}, 1000)
		c, _ := cid.V1Builder{Codec: cid.Raw, MhType: 0x12}.Sum(data)
		big = append(big, car.Block{CID: c, Data: data})
	}
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"truncated", good[:len(good)/2], "not a valid CAR"},
		{"not a CAR", []byte("hello, this is not a CAR"), "not a valid CAR"},
		{"two roots", remarshal([]cid.Cid{roots[0], recordBlock}, blocks), "one root"},
		{"unsigned", recommit(func(c *indigorepo.Commit) { c.Sig = nil }), "signature"},
		{"signed by another key", recommit(func(c *indigorepo.Commit) { _ = c.Sign(other) }), "does not verify"},
		{"another DID's repo", getRepo(t, m.old, m.b.DID), "not " + m.a.DID.String()},
		{"a record block missing", remarshal(roots, withoutRecord), "missing"},
		{"a block twice", remarshal(roots, dup), "twice"},
		{"data root is a record", recommit(func(c *indigorepo.Commit) { c.Data = recordBlock; _ = c.Sign(m.a.Key) }), "invalid repo tree"},
		{"a CAR bomb", remarshal(roots, append(append([]car.Block{}, blocks...), bomb...)), "more than 300 blocks"},
		{"oversized", remarshal(roots, append(append([]car.Block{}, blocks...), big...)), "larger than this server accepts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := importCAR(m.new, tok, tc.body)
			if r.Status != 400 || r.ErrorName() != "InvalidRequest" || !bytes.Contains(r.Body, []byte(tc.want)) {
				t.Fatalf("%d %s, want 400 InvalidRequest mentioning %q", r.Status, r.Body, tc.want)
			}
			if _, err := m.new.Log.RepoHead(context.Background(), m.a.DID); err == nil {
				t.Fatal("a refused import left a repo")
			}
		})
	}
	// And the good one still goes in after all that.
	if r := importCAR(m.new, tok, good); r.Status != 200 {
		t.Fatalf("good import after the refusals: %d %s", r.Status, r.Body)
	}
}

// createAccount with a DID needs a service-auth JWT from that DID for this
// server and method, signed by the key its document names.
func TestCreateAccountWithDIDNeedsServiceAuth(t *testing.T) {
	m := newPair(t, nil)
	aud := apitest.Service.DID().String()
	const lxm = "com.atproto.server.createAccount"
	other, _ := atcrypto.GeneratePrivateKeyK256()
	create := func(tok string) *apitest.Response {
		return m.new.Do("POST", "/xrpc/com.atproto.server.createAccount", nil, tok, map[string]any{
			"did": m.a.DID, "handle": "moved.test", "email": "moved@example.com", "password": "pw-123456", "inviteCode": "migrate-invite"})
	}
	for _, tc := range []struct {
		name, tok, want string
	}{
		{"no auth", "", "AuthenticationRequired"},
		{"another audience", serviceAuth(t, m.a.Key, m.a.DID, "did:web:elsewhere.example", lxm, time.Now().Add(time.Minute)), "BadJwtAudience"},
		{"expired", serviceAuth(t, m.a.Key, m.a.DID, aud, lxm, time.Now().Add(-time.Minute)), "JwtExpired"},
		{"another method", serviceAuth(t, m.a.Key, m.a.DID, aud, "com.atproto.repo.createRecord", time.Now().Add(time.Minute)), "BadJwtLexiconMethod"},
		{"a key not in the document", serviceAuth(t, other, m.a.DID, aud, lxm, time.Now().Add(time.Minute)), "BadJwtSignature"},
		{"another DID's token", serviceAuth(t, m.b.Key, m.b.DID, aud, lxm, time.Now().Add(time.Minute)), "AuthenticationRequired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := create(tc.tok); r.Status != 401 || r.ErrorName() != tc.want {
				t.Fatalf("%d %s, want 401 %s", r.Status, r.Body, tc.want)
			}
			if _, err := m.new.Accounts.Get(context.Background(), m.a.DID); err == nil {
				t.Fatal("the account was created")
			}
		})
	}
	m.arrive(t, m.a, "moved.test")
}

// A key reserved for a DID is the key its account gets.
func TestReserveSigningKey(t *testing.T) {
	m := newPair(t, nil)
	r := m.new.Do("POST", "/xrpc/com.atproto.server.reserveSigningKey", nil, "", map[string]any{"did": m.a.DID})
	var out struct{ SigningKey string }
	r.JSON(t, &out)
	if r.Status != 200 || out.SigningKey == "" {
		t.Fatalf("reserveSigningKey: %d %s", r.Status, r.Body)
	}
	m.arrive(t, m.a, "keyholder.test") // not "reserved": a reserved handle (handle/reserved.ts)
	key, err := m.new.PDS.SigningKey(context.Background(), m.a.DID)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey()
	if pub.DIDKey() != out.SigningKey {
		t.Fatalf("the account's key is %s, the reserved one %s", pub.DIDKey(), out.SigningKey)
	}
	_ = sort.Strings
}

// PDS_ACCEPTING_REPO_IMPORTS=false refuses importRepo.
func TestImportsRefusedBySetting(t *testing.T) {
	m := newPair(t, func(o *pds.Options) { o.RefuseImports = true })
	tok := m.arrive(t, m.a, "arrived.test")
	if r := importCAR(m.new, tok, getRepo(t, m.old, m.a.DID)); r.Status != 400 || !bytes.Contains(r.Body, []byte("not accepting repo imports")) {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}
