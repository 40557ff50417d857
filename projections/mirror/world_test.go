package mirror_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/commit/committest"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/eventlog/blobstore/disk"
	"github.com/pdslog/pdslog/eventlog/blobstore/s3"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/mst/car"
	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/blobs"
	"github.com/pdslog/pdslog/projections/blocks"
	"github.com/pdslog/pdslog/projections/mirror"
	"github.com/pdslog/pdslog/projections/mirror/d1"
	"github.com/pdslog/pdslog/projections/records"
	"github.com/pdslog/pdslog/projections/repos"
)

var quiet = slog.New(slog.DiscardHandler)

// world is a log built like serve builds it, with a disk blob store: some
// accounts creating, updating and deleting records (some with blobs, some
// with blocks too large for a D1 row), uploading blobs the collector
// later deletes (one of them before the mirror could copy it), blob
// takedowns, record takedowns (and their reversals), handle changes,
// deactivation, and one account deleted (its events purged to tombstones).
type world struct {
	dir   string
	log   *eventlog.Log
	store *disk.Store
	st    *committest.Stream
	rng   *rand.Rand
	ctx   context.Context

	live    []*committest.Repo
	blobsOf map[syntax.DID][]atdata.Blob // uploaded, usable in records
	pending []func()                     // appends due later (a collector's deletions)
}

const (
	logDir   = "eventlog"
	blobsDir = "blobs"
	keyFile  = "seal.key"
)

// openLog opens dir's log (creating it).
func openLog(t testing.TB, dir string) *eventlog.Log {
	t.Helper()
	key, err := eventlog.LoadOrCreateKey(filepath.Join(dir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(filepath.Join(dir, logDir), &eventlog.Options{SealKey: key, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func openDisk(t testing.TB, dir string) *disk.Store {
	t.Helper()
	s, err := disk.Open(filepath.Join(dir, blobsDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newWorld opens a log in dir and creates n accounts.
func newWorld(t testing.TB, dir string, seed uint64, n int) *world {
	t.Helper()
	w := &world{dir: dir, log: openLog(t, dir), store: openDisk(t, dir), st: committest.NewStream(seed, n),
		rng: rand.New(rand.NewPCG(seed, 7)), ctx: context.Background(), blobsOf: map[syntax.DID][]atdata.Blob{}}
	for i, r := range w.st.Repos {
		r.KeyLogged = true
		genesis := w.st.Commit(r, nil)
		sync, err := commit.SyncAfter(genesis)
		if err != nil {
			t.Fatal(err)
		}
		handle := syntax.Handle(fmt.Sprintf("user%d.test", i))
		w.append(t, commit.SigningKeyEvent(r.DID, r.Key),
			events.Must(r.DID, &events.AccountCreated{Handle: handle, PasswordHash: "secret-hash", CreatedAt: "2026-11-26T12:00:00Z"}),
			&eventlog.Event{Kind: eventlog.KindIdentity, DID: r.DID, Identity: &eventlog.Identity{Handle: handle}},
			&eventlog.Event{Kind: eventlog.KindAccount, DID: r.DID, Account: &eventlog.Account{Active: true}},
			genesis, sync)
		w.live = append(w.live, r)
	}
	return w
}

func (w *world) append(t testing.TB, evs ...*eventlog.Event) eventlog.Seq {
	t.Helper()
	seq, err := w.log.Append(w.ctx, evs...)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// blobCID is the CID atproto gives blob bytes (raw, sha-256).
func blobCID(b []byte) cid.Cid {
	sum := sha256.Sum256(b)
	mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
	return cid.NewCidV1(cid.Raw, mh)
}

// upload stores random bytes as r's blob and logs the upload.
func (w *world) upload(t testing.TB, r *committest.Repo) atdata.Blob {
	t.Helper()
	b := make([]byte, 100+w.rng.IntN(3000))
	for i := range b {
		b[i] = byte(w.rng.IntN(256))
	}
	c := blobCID(b)
	if err := w.store.Put(w.ctx, r.DID, c, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	ev, err := events.New(r.DID, &events.BlobUploaded{CID: c.String(), MimeType: "image/png", Size: int64(len(b))})
	if err != nil {
		t.Fatal(err)
	}
	w.append(t, ev)
	return atdata.Blob{Ref: atdata.CIDLink(c), MimeType: "image/png", Size: int64(len(b))}
}

// collect deletes r's blob like the collector: bytes first, then the event.
func (w *world) collect(t testing.TB, r *committest.Repo, b atdata.Blob) {
	t.Helper()
	if err := w.store.Delete(w.ctx, r.DID, b.Ref.CID()); err != nil {
		t.Fatal(err)
	}
	ev, err := events.New(r.DID, &events.BlobDeleted{CID: b.Ref.String(), Reason: "unreferenced"})
	if err != nil {
		t.Fatal(err)
	}
	w.append(t, ev)
}

func post(text string, imgs ...atdata.Blob) map[string]any {
	rec := map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-26T12:00:00.000Z"}
	if len(imgs) > 0 {
		var list []any
		for _, b := range imgs {
			list = append(list, map[string]any{"image": b, "alt": "a <picture> & more"})
		}
		rec["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": list}
	}
	return rec
}

// round appends one random piece of activity.
func (w *world) round(t testing.TB) {
	t.Helper()
	if len(w.pending) > 0 && w.rng.IntN(3) == 0 {
		f := w.pending[0]
		w.pending = w.pending[1:]
		f()
		return
	}
	r := w.live[w.rng.IntN(len(w.live))]
	switch k := w.rng.IntN(100); {
	case k < 45:
		w.append(t, w.st.Commit(r, w.st.RandomWrites(r, 1+w.rng.IntN(4))))
	case k < 60: // a post with images
		var imgs []atdata.Blob
		for range 1 + w.rng.IntN(2) {
			b := w.upload(t, r)
			imgs = append(imgs, b)
			w.blobsOf[r.DID] = append(w.blobsOf[r.DID], b)
		}
		if old := w.blobsOf[r.DID]; len(old) > 2 && w.rng.IntN(2) == 0 {
			imgs = append(imgs, old[w.rng.IntN(len(old)-2)]) // a blob another record also uses
		}
		wr := commit.Write{Action: eventlog.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(syntax.NewTIDNow(0).String()),
			Record: post(fmt.Sprintf("pics %d", w.rng.IntN(1e6)), imgs...)}
		w.append(t, w.st.Commit(r, []commit.Write{wr}))
	case k < 65: // a long post: its blocks are over the test's inline limit
		wr := commit.Write{Action: eventlog.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(syntax.NewTIDNow(0).String()),
			Record: post(strings.Repeat("long ", 500+w.rng.IntN(200)))}
		w.append(t, w.st.Commit(r, []commit.Write{wr}))
	case k < 72: // an upload nobody references, collected later
		b := w.upload(t, r)
		w.pending = append(w.pending, func() { w.collect(t, r, b) })
	case k < 75: // collected before the mirror could copy it
		b := w.upload(t, r)
		if err := w.store.Delete(w.ctx, r.DID, b.Ref.CID()); err != nil {
			t.Fatal(err)
		}
		w.pending = append(w.pending, func() {
			ev, _ := events.New(r.DID, &events.BlobDeleted{CID: b.Ref.String(), Reason: "unreferenced"})
			w.append(t, ev)
		})
	case k < 80:
		if bs := w.blobsOf[r.DID]; len(bs) > 0 {
			b := bs[w.rng.IntN(len(bs))]
			ev, _ := events.New(r.DID, &events.BlobQuarantine{CID: b.Ref.String(), On: w.rng.IntN(3) > 0})
			w.append(t, ev)
		}
	case k < 86:
		w.append(t, &eventlog.Event{Kind: eventlog.KindIdentity, DID: r.DID, Identity: &eventlog.Identity{Handle: syntax.Handle(fmt.Sprintf("h%d.test", w.rng.IntN(1e6)))}})
	case k < 90:
		active := w.rng.IntN(2) == 0
		status := ""
		if !active {
			status = "deactivated"
		}
		w.append(t, &eventlog.Event{Kind: eventlog.KindAccount, DID: r.DID, Account: &eventlog.Account{Active: active, Status: status}})
	case k < 92:
		w.takedown(t, r)
	case k < 95: // never mirrored
		w.append(t, events.Must(r.DID, &events.AccountCreated{Handle: "x.test", PasswordHash: "secret-hash-2"}))
	default: // a commit that rewrites records holding blobs
		var ws []commit.Write
		for p := range r.Records {
			if !strings.HasPrefix(p, "app.bsky.feed.post/") || len(ws) == 2 {
				continue
			}
			coll, rkey, _ := strings.Cut(p, "/")
			wr := commit.Write{Action: eventlog.ActionDelete, Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey)}
			if w.rng.IntN(2) == 0 {
				wr.Action, wr.Record = eventlog.ActionUpdate, post("edited")
				if bs := w.blobsOf[r.DID]; len(bs) > 0 {
					wr.Record = post("edited", bs[w.rng.IntN(len(bs))])
				}
			}
			ws = append(ws, wr)
		}
		if len(ws) > 0 {
			w.append(t, w.st.Commit(r, ws))
		}
	}
}

// takedown takes one of r's records down as the admin API does (now and
// then naming a record r does not hold, which changes nothing), reverses a
// takedown, or takes a record down, deletes it and makes it again at its
// path (served again: the takedown went with the record).
func (w *world) takedown(t testing.TB, r *committest.Repo) {
	t.Helper()
	paths := slices.Sorted(maps.Keys(r.Records))
	if len(paths) == 0 {
		return
	}
	p := paths[w.rng.IntN(len(paths))]
	coll, rkey, _ := strings.Cut(p, "/")
	ev := func(rkey string, applied bool) *eventlog.Event {
		return events.Must(r.DID, &events.RecordTakedown{Collection: coll, RKey: rkey, Applied: applied, Ref: "mod-1"})
	}
	switch k := w.rng.IntN(10); {
	case k < 5:
		w.append(t, ev(rkey, true))
	case k < 7:
		w.append(t, ev(rkey, false))
	case k < 8:
		w.append(t, ev("nothere", true))
	default:
		w.append(t, ev(rkey, true))
		w.append(t, w.st.Commit(r, []commit.Write{{Action: eventlog.ActionDelete, Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey)}}))
		w.append(t, w.st.Commit(r, []commit.Write{{Action: eventlog.ActionCreate, Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey),
			Record: map[string]any{"$type": coll, "text": "again"}}}))
	}
}

// deleteAccount deletes r's account as admin deleteAccount does.
func (w *world) deleteAccount(t testing.TB, r *committest.Repo) {
	t.Helper()
	seq := w.append(t, &eventlog.Event{Kind: eventlog.KindAccount, DID: r.DID, Account: &eventlog.Account{Active: false, Status: "deleted"}})
	if _, err := w.log.Purge(w.ctx, r.DID, seq); err != nil {
		t.Fatal(err)
	}
	if err := w.store.DeleteAccount(w.ctx, r.DID); err != nil {
		t.Fatal(err)
	}
	w.live = slices.DeleteFunc(w.live, func(x *committest.Repo) bool { return x == r })
}

// build appends n rounds; with deleteOne it deletes an account halfway.
func (w *world) build(t testing.TB, n int, deleteOne bool) {
	t.Helper()
	for i := range n {
		if deleteOne && i == n/2 && len(w.live) > 2 {
			w.deleteAccount(t, w.live[0])
		}
		w.round(t)
	}
}

// flush appends what is pending (the collector's deletions).
func (w *world) flush() {
	for _, f := range w.pending {
		f()
	}
	w.pending = nil
}

// r2 is gofakes3 (S3 in memory) on a real listener, counting requests, in
// front of which a test may put failures.
type r2 struct {
	*httptest.Server
	mu   sync.Mutex
	ops  map[string]int // "METHOD" -> count
	fail func(*http.Request) bool
}

const bucket = "pds-mirror"

func startR2(t testing.TB) *r2 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(backend).Server()
	s := &r2{ops: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ops[r.Method]++
		fail := s.fail != nil && s.fail(r)
		s.mu.Unlock()
		if fail {
			http.Error(w, "injected", http.StatusServiceUnavailable)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *r2) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[method]
}

func (s *r2) options(prefix string) s3.Options {
	return s3.Options{Bucket: bucket, Endpoint: s.URL, ForcePathStyle: true, AccessKeyID: "r2-key", SecretAccessKey: "r2-secret",
		KeyPrefix: prefix}
}

func (s *r2) stores(t testing.TB) (blobstore.Store, blobstore.Store) {
	t.Helper()
	b, err := s3.New(s.options("blobs/"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := s3.New(s.options("blockstore/"))
	if err != nil {
		t.Fatal(err)
	}
	return b, k
}

// objects returns every object in the bucket: key -> bytes.
func (s *r2) objects(t testing.TB) map[string][]byte {
	t.Helper()
	c := awss3.New(awss3.Options{Region: "auto", BaseEndpoint: aws.String(s.URL), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "r2-key", SecretAccessKey: "r2-secret"}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
	out := map[string][]byte{}
	in := &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	for {
		page, err := c.ListObjectsV2(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			obj, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[aws.ToString(o.Key)] = b
		}
		if !aws.ToBool(page.IsTruncated) {
			return out
		}
		in.ContinuationToken = page.NextContinuationToken
	}
}

// local is the local projections of a world's log, caught up.
type local struct {
	repos   *repos.Projection
	blocks  *blocks.Projection
	records *records.Projection
	blobs   *blobs.Projection
}

func project(t testing.TB, l *eventlog.Log) *local {
	t.Helper()
	s, err := projections.OpenStore(t.TempDir(), &projections.StoreOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p := &local{repos: repos.New(s), blocks: blocks.New(s), records: records.New(s), blobs: blobs.New(s)}
	r := projections.NewRunner(l, []projections.Projection{p.repos, p.blocks, p.records, p.blobs}, &projections.RunnerOptions{Logger: quiet})
	if err := r.CatchUp(context.Background(), l.Head()); err != nil {
		t.Fatal(err)
	}
	return p
}

// rowsOf reads a whole table, each row as its columns' values joined by
// " | " (NULL as ∅), sorted.
func rowsOf(t testing.TB, db *d1.Client, query string) []string {
	t.Helper()
	res, err := db.Batch(context.Background(), []d1.Statement{{SQL: query}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range res[0].Rows {
		cols := strings.Split(strings.TrimSpace(strings.Split(strings.TrimPrefix(query, "SELECT "), " FROM")[0]), ", ")
		var vals []string
		for _, c := range cols {
			switch v := r[c].(type) {
			case nil:
				vals = append(vals, "∅")
			case json.Number:
				vals = append(vals, v.String())
			case string:
				vals = append(vals, v)
			default:
				t.Fatalf("%s: column %s is %T", query, c, v)
			}
		}
		out = append(out, strings.Join(vals, " | "))
	}
	sort.Strings(out)
	return out
}

func row(vals ...any) string {
	var s []string
	for _, v := range vals {
		s = append(s, fmt.Sprint(v))
	}
	return strings.Join(s, " | ")
}

func orNull(s string) string {
	if s == "" {
		return "∅"
	}
	return s
}

func diff(t testing.TB, table string, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if slices.Equal(got, want) {
		return
	}
	g, w := map[string]bool{}, map[string]bool{}
	for _, r := range got {
		g[r] = true
	}
	for _, r := range want {
		w[r] = true
	}
	n := 0
	for _, r := range got {
		if !w[r] && n < 5 {
			t.Errorf("%s: unexpected row %.300s", table, r)
			n++
		}
	}
	for _, r := range want {
		if !g[r] && n < 10 {
			t.Errorf("%s: missing row %.300s", table, r)
			n++
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d (duplicates?)", table, len(got), len(want))
	}
	t.Fatalf("%s differs from the local projections", table)
}

// checkMirror asserts that every D1 table equals the local projections
// row for row, that R2 holds exactly the objects the rows name (with the
// bytes their CIDs hash), and that the cursor is the log's head.
func checkMirror(t testing.TB, l *eventlog.Log, db *d1.Client, r2s *r2, inline int) {
	t.Helper()
	ctx := context.Background()
	p := project(t, l)

	// account_state and repo_root: the repos projection.
	var wantAcct, wantRoot []string
	rs, err := p.repos.List(ctx, "", 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		active := 0
		if r.Active {
			active = 1
		}
		wantAcct = append(wantAcct, row(r.DID, orNull(string(r.Handle)), active, orNull(r.Status)))
		if r.Rev != "" {
			wantRoot = append(wantRoot, row(r.DID, r.Commit, r.Rev, r.Data, r.Seq))
		}
	}
	diff(t, "account_state", rowsOf(t, db, "SELECT did, handle, active, status FROM account_state"), wantAcct)
	diff(t, "repo_root", rowsOf(t, db, "SELECT did, commit_cid, rev, data_cid, seq FROM repo_root"), wantRoot)

	// blockstore: the blocks projection (did 0x00 cid -> bytes).
	var wantBlocks []string
	wantObjects := map[string][]byte{}
	err = p.blocks.Space.Scan(ctx, nil, nil, false, func(k, v []byte) error {
		did, cb, _ := bytes.Cut(k, []byte{0})
		_, c, err := cid.CidFromBytes(cb)
		if err != nil {
			return err
		}
		enc := base64.StdEncoding.EncodeToString(v)
		if len(enc) > inline {
			key := "blockstore/" + string(did) + "/" + c.String()
			wantObjects[key] = bytes.Clone(v) // v is only valid during the callback
			wantBlocks = append(wantBlocks, row(string(did), c, "∅", key))
		} else {
			wantBlocks = append(wantBlocks, row(string(did), c, enc, "∅"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "blockstore", rowsOf(t, db, "SELECT did, cid, bytes, key FROM blockstore"), wantBlocks)

	// record: the records projection; each row's JSON must parse back to
	// the very record (same DAG-CBOR, same CID).
	var wantRecords []string
	err = p.records.Space.Scan(ctx, nil, nil, false, func(k, v []byte) error {
		did, rest, _ := bytes.Cut(k, []byte{0})
		if rest[0] != 'r' {
			return nil // counts
		}
		coll, rkey, _ := bytes.Cut(rest[1:], []byte{0})
		n, c, err := cidAfterLen(v)
		if err != nil {
			return err
		}
		_ = n
		wantRecords = append(wantRecords, row(fmt.Sprintf("at://%s/%s/%s", did, coll, rkey), string(did), c))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "record", rowsOf(t, db, "SELECT uri, did, cid FROM record"), wantRecords)
	diff(t, "record_takedown", rowsOf(t, db, "SELECT uri, did FROM record_takedown"), takedownsOf(t, p.records))
	res, err := db.Batch(ctx, []d1.Statement{{SQL: "SELECT cid, json FROM record"}})
	if err != nil {
		t.Fatal(err)
	}
	nulls := 0
	for _, r := range res[0].Rows {
		js, ok := r["json"].(string)
		if !ok {
			nulls++
			continue
		}
		rec, err := atdata.UnmarshalJSON([]byte(js))
		if err != nil {
			t.Fatalf("record %v: json does not parse: %v", r["cid"], err)
		}
		b, err := atdata.MarshalCBOR(rec)
		if err != nil {
			t.Fatal(err)
		}
		if got := blockCID(b); got.String() != r["cid"] {
			t.Fatalf("record %v: its json encodes to %s", r["cid"], got)
		}
	}
	if inline < 2000 && nulls == 0 {
		t.Errorf("no record too large for its row: the test does not reach that path")
	}

	// blob and blob_usage: the blobs projection.
	var wantBlobs, wantUsage []string
	err = p.blobs.Space.Scan(ctx, nil, nil, false, func(k, v []byte) error {
		did, rest, ok := bytes.Cut(k, []byte{0})
		if !ok || len(rest) == 0 || k[0] == 0x01 {
			return nil // the collector's candidate index
		}
		switch rest[0] {
		case 'b':
			var b blobs.Blob
			if err := json.Unmarshal(v, &b); err != nil {
				return err
			}
			if !b.Uploaded {
				return nil
			}
			q := 0
			if b.Quarantined {
				q = 1
			}
			key := "blobs/" + string(did) + "/" + b.CID
			wantBlobs = append(wantBlobs, row(b.CID, string(did), key, b.MimeType, b.Size, q))
		case 'p':
			var refs struct {
				Rev  string   `json:"rev"`
				CIDs []string `json:"cids"`
			}
			if err := json.Unmarshal(v, &refs); err != nil {
				return err
			}
			for _, c := range refs.CIDs {
				wantUsage = append(wantUsage, row(string(did), "at://"+string(did)+"/"+string(rest[1:]), "blobs/"+string(did)+"/"+c, c, refs.Rev))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "blob", rowsOf(t, db, "SELECT cid, did, key, mime, size, quarantined FROM blob"), wantBlobs)
	diff(t, "blob_usage", rowsOf(t, db, "SELECT did, record_uri, key, cid, repo_rev FROM blob_usage"), wantUsage)

	// commit_log: every #commit left in the log (a deleted account's are
	// tombstones now), with the signed commit's signature.
	var wantCommits []string
	it, err := l.Iter(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for it.Next() {
		ev := it.Event()
		if ev.Kind != eventlog.KindCommit {
			continue
		}
		_, bs, err := car.Unmarshal(ev.Commit.Blocks, nil)
		if err != nil {
			t.Fatal(err)
		}
		var sig []byte
		for _, b := range bs {
			if b.CID == ev.Commit.Commit {
				obj, err := atdata.UnmarshalCBOR(b.Data)
				if err != nil {
					t.Fatal(err)
				}
				sig = obj["sig"].(atdata.Bytes)
			}
		}
		wantCommits = append(wantCommits, row(ev.Seq, ev.DID, ev.Commit.Commit, ev.Commit.Rev, base64.StdEncoding.EncodeToString(sig), ev.Time.Time().UnixMilli()))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	diff(t, "commit_log", rowsOf(t, db, "SELECT seq, did, cid, rev, sig, ts FROM commit_log"), wantCommits)

	// sync_log: every #sync left in the log; signing_key: the public half
	// of each account's latest signing key event (none of a deleted
	// account's are left).
	var wantSyncs []string
	keys := map[syntax.DID]string{}
	it, err = l.Iter(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for it.Next() {
		ev := it.Event()
		switch {
		case ev.Kind == eventlog.KindSync:
			wantSyncs = append(wantSyncs, row(ev.Seq, ev.DID, ev.Sync.Commit, ev.Sync.Rev, ev.Sync.Data))
		case ev.Kind == eventlog.KindPrivate && ev.Private.Type == events.TypeSigningKey:
			p, err := events.Decode(ev.Private)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := p.(*events.SigningKey).Key.PublicKey()
			if err != nil {
				t.Fatal(err)
			}
			keys[ev.DID] = pub.Multibase()
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if len(wantSyncs) == 0 || len(keys) == 0 {
		t.Fatalf("the world has %d #sync events and %d signing keys: the test does not reach those rows", len(wantSyncs), len(keys))
	}
	diff(t, "sync_log", rowsOf(t, db, "SELECT seq, did, cid, rev, data_cid FROM sync_log"), wantSyncs)
	var wantKeys []string
	for did, k := range keys {
		wantKeys = append(wantKeys, row(did, k))
	}
	diff(t, "signing_key", rowsOf(t, db, "SELECT did, public_key FROM signing_key"), wantKeys)

	// R2: exactly the uploaded blobs the local store still has... and the
	// blocks too large for D1. A blob row whose bytes were collected
	// before the mirror got there is gone by now (its blob.deleted).
	for _, r := range wantBlobs {
		f := strings.Split(r, " | ")
		did, c := syntax.DID(f[1]), cid.MustParse(f[0])
		rc, err := openLocal(t, l, did, c)
		if err != nil {
			t.Fatalf("blob row %s: %v", f[2], err)
		}
		wantObjects[f[2]] = rc
	}
	got := r2s.objects(t)
	for k, b := range got {
		want, ok := wantObjects[k]
		if !ok {
			t.Errorf("R2 holds %s, which no row names", k)
		} else if !bytes.Equal(b, want) {
			t.Errorf("R2 %s: %d bytes, want %d", k, len(b), len(want))
		}
	}
	for k := range wantObjects {
		if _, ok := got[k]; !ok {
			t.Errorf("R2 lacks %s", k)
		}
	}

	// The cursor is the head; nothing is left to delete.
	if got := rowsOf(t, db, "SELECT name, cursor FROM mirror_state"); !slices.Equal(got, []string{row(mirror.DefaultName, l.Head())}) {
		t.Fatalf("mirror_state %q, want cursor %d", got, l.Head())
	}
	if got := rowsOf(t, db, "SELECT key, seq FROM r2_trash"); len(got) != 0 {
		t.Fatalf("r2_trash left: %q", got)
	}
}

// takedownsOf returns the records projection's takedowns as
// record_takedown rows (uri, did).
func takedownsOf(t testing.TB, p *records.Projection) []string {
	t.Helper()
	var out []string
	err := p.Space.Scan(context.Background(), nil, nil, false, func(k, _ []byte) error {
		did, rest, _ := bytes.Cut(k, []byte{0})
		if len(rest) == 0 || rest[0] != 't' {
			return nil
		}
		coll, rkey, _ := bytes.Cut(rest[1:], []byte{0})
		out = append(out, row(fmt.Sprintf("at://%s/%s/%s", did, coll, rkey), string(did)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// localBlobs maps a log to the disk store its world keeps blobs in.
var localBlobs sync.Map // *eventlog.Log -> blobstore.Store

func openLocal(t testing.TB, l *eventlog.Log, did syntax.DID, c cid.Cid) ([]byte, error) {
	v, ok := localBlobs.Load(l)
	if !ok {
		t.Fatal("no local blob store registered for the log")
	}
	rc, err := v.(blobstore.Store).Open(context.Background(), did, c, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func blockCID(b []byte) cid.Cid {
	sum := sha256.Sum256(b)
	mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
	return cid.NewCidV1(cid.DagCBOR, mh)
}

// cidAfterLen reads a records value: uvarint(len(cid)) cid record-bytes.
func cidAfterLen(v []byte) (int, cid.Cid, error) {
	n, k := uvarint(v)
	if k <= 0 || int(n) > len(v)-k {
		return 0, cid.Undef, fmt.Errorf("bad record value")
	}
	_, c, err := cid.CidFromBytes(v[k : k+int(n)])
	return k + int(n), c, err
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	var s uint
	for i, c := range b {
		if c < 0x80 {
			return x | uint64(c)<<s, i + 1
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}

var _ = time.Second
