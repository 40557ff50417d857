package backup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/backup/objstore"
	"github.com/pdslog/pdslog/eventlog/backup/objstore/objstoretest"
	"github.com/pdslog/pdslog/eventlog/blobstore"
	"github.com/pdslog/pdslog/eventlog/blobstore/disk"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/eventlog/events"
)

// env is a data dir's worth of real parts: a Pebble log in a temp dir with
// its keys/ beside it, a disk blob store, and a backup on gofakes3 served
// over loopback.
type env struct {
	t       *testing.T
	dir     string
	log     *eventlog.Log
	blobs   blobstore.Store
	s3      *objstoretest.FakeS3
	target  *Target
	url     string
	rec     age.Recipient
	id      age.Identity
	stream  *eventlogtest.Stream
	mu      sync.Mutex
	appends map[eventlog.Seq]time.Time // when each append was acknowledged
}

var quiet = slog.New(slog.DiscardHandler)

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), stream: eventlogtest.NewStream(1, 4), appends: map[eventlog.Seq]time.Time{}}
	key, err := eventlog.LoadOrCreateKey(filepath.Join(e.dir, "keys", "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "keys", "jwt.secret"), []byte("jwt-secret-of-the-test"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.log, err = eventlog.Open(filepath.Join(e.dir, "eventlog"), &eventlog.Options{SealKey: key, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.log.Close() })
	if e.blobs, err = disk.Open(filepath.Join(e.dir, "blobs"), nil); err != nil {
		t.Fatal(err)
	}
	e.s3 = objstoretest.StartFakeS3(t)
	e.url = "s3://" + objstoretest.FakeBucket + "/pds/one"
	e.target = e.openTarget(e.url)
	if e.rec, e.id, err = PassphraseKeys("test passphrase", 10); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) openTarget(url string) *Target {
	tg, err := OpenTarget(url, S3Config{Endpoint: e.s3.URL, ForcePathStyle: true,
		AccessKeyID: objstoretest.FakeKeyID, SecretAccessKey: objstoretest.FakeSecret})
	if err != nil {
		e.t.Fatal(err)
	}
	return tg
}

func (e *env) shipper(mod func(*Options)) *Shipper {
	e.t.Helper()
	o := Options{Log: e.log, Target: e.target, StatePath: filepath.Join(e.dir, "backup", "state.json"),
		KeysDir: filepath.Join(e.dir, "keys"), KeysRecipients: []age.Recipient{e.rec}, KeysMethod: "passphrase",
		LocalBlobs: e.blobs, RPO: 200 * time.Millisecond, SeqReserve: 1000, Logger: quiet,
		FlushTimeout: time.Second}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// append appends n events of the stream and records when each was acknowledged.
func (e *env) append(n int) eventlog.Seq {
	e.t.Helper()
	var last eventlog.Seq
	for range n {
		seq, err := e.log.Append(context.Background(), e.stream.Next())
		if err != nil {
			e.t.Fatal(err)
		}
		e.mu.Lock()
		e.appends[seq] = time.Now()
		e.mu.Unlock()
		last = seq
	}
	return last
}

// uploadBlob stores a blob for did and appends its event.
func (e *env) uploadBlob(did syntax.DID, data []byte) cid.Cid {
	e.t.Helper()
	mh, _ := multihash.Sum(data, multihash.SHA2_256, -1)
	c := cid.NewCidV1(cid.Raw, mh)
	if err := e.blobs.Put(context.Background(), did, c, bytes.NewReader(data), int64(len(data))); err != nil {
		e.t.Fatal(err)
	}
	ev := events.Must(did, &events.BlobUploaded{CID: c.String(), MimeType: "application/octet-stream", Size: int64(len(data))})
	if _, err := e.log.Append(context.Background(), ev); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// restore restores the backup into a new data dir and opens its log.
func (e *env) restore(mod func(*RestoreOptions)) (*RestoreResult, *eventlog.Log, string) {
	e.t.Helper()
	dir := e.t.TempDir()
	dst, err := disk.Open(filepath.Join(dir, "blobs"), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	o := RestoreOptions{Target: e.target, LogDir: filepath.Join(dir, "eventlog"), KeysDir: filepath.Join(dir, "keys"),
		Identities: []age.Identity{e.id}, BlobDest: dst, Logger: quiet}
	if mod != nil {
		mod(&o)
	}
	res, err := Restore(context.Background(), o)
	if err != nil {
		e.t.Fatalf("restore: %v", err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "keys", "seal.key"))
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := eventlog.Open(o.LogDir, &eventlog.Options{SealKey: key, SeqFloor: res.SeqFloor, Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = l.Close() })
	return res, l, dir
}

// sameLog checks that got holds exactly want's stored values through seq.
func sameLog(t *testing.T, want, got *eventlog.Log, through eventlog.Seq) {
	t.Helper()
	ctx := context.Background()
	a, _ := want.IterRaw(ctx, 0)
	b, _ := got.IterRaw(ctx, 0)
	defer a.Close()
	defer b.Close()
	for a.Next() && a.Seq() <= through {
		if !b.Next() || b.Seq() != a.Seq() || !bytes.Equal(a.Value(), b.Value()) {
			t.Fatalf("restored log differs at seq %d", a.Seq())
		}
	}
	if err := got.Verify(ctx, nil); err != nil {
		t.Fatalf("restored log: %v", err)
	}
}

// segmentsOf lists the chosen segments of the backup's generation and
// checks every stale object is gone.
func segmentsOf(t *testing.T, tg *Target, gen string) []segRef {
	t.Helper()
	var out []segRef
	c := newChain(func(r segRef) error { out = append(out, r); return nil })
	if err := listSegments(context.Background(), tg.Objects, gen, c.add); err != nil {
		t.Fatal(err)
	}
	if err := c.done(); err != nil {
		t.Fatal(err)
	}
	if len(c.stale) > 0 {
		t.Fatalf("%d stale segments (first %s)", len(c.stale), c.stale[0].Key)
	}
	return out
}

// The whole round trip on real parts: a log with secrets, blobs and a
// deleted account is shipped and restored into an empty directory
// byte for byte, with its keys and blobs, and the seq floor covers the
// reservation.
func TestShipAndRestore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.append(300)
	did := e.stream.Repos[1].DID
	blob := e.uploadBlob(did, bytes.Repeat([]byte("blob"), 1000))
	e.append(100)
	s := e.shipper(func(o *Options) { o.SegmentBytes = 16 << 10 })
	if err := s.CatchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Events != int64(e.log.Head()) || st.Segments < 3 || st.Blobs != 1 {
		t.Fatalf("stats %+v, head %d", st, e.log.Head())
	}
	segs := segmentsOf(t, e.target, s.Generation())
	if segs[len(segs)-1].Last != e.log.Head() {
		t.Fatalf("backup ends at %d, log at %d", segs[len(segs)-1].Last, e.log.Head())
	}
	// The keys object holds nothing in clear.
	sealed, err := objstore.ReadAll(ctx, e.target.Objects, keysKey(s.Generation()), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	seal, _ := os.ReadFile(filepath.Join(e.dir, "keys", "seal.key"))
	if bytes.Contains(sealed, seal) || bytes.Contains(sealed, []byte("jwt-secret-of-the-test")) {
		t.Fatal("keys shipped in clear")
	}

	res, got, dir := e.restore(nil)
	if res.Restored != e.log.Head() || res.Shipped != e.log.Head() || res.KeysRestored != 2 || res.Blobs != 1 {
		t.Fatalf("result %+v", res)
	}
	if res.SeqFloor < e.log.Head()+1000-1 {
		t.Fatalf("seq floor %d does not cover the reservation (head %d + 1000)", res.SeqFloor, e.log.Head())
	}
	sameLog(t, e.log, got, e.log.Head())
	if jwt, _ := os.ReadFile(filepath.Join(dir, "keys", "jwt.secret")); string(jwt) != "jwt-secret-of-the-test" {
		t.Fatalf("jwt secret restored as %q", jwt)
	}
	dst, _ := disk.Open(filepath.Join(dir, "blobs"), nil)
	if n, err := dst.Stat(ctx, did, blob); err != nil || n != 4000 {
		t.Fatalf("restored blob: %d %v", n, err)
	}
	if got.Head() != res.SeqFloor {
		t.Fatalf("restored log head %d, floor %d", got.Head(), res.SeqFloor)
	}

	// A second restore into a used directory is refused.
	_, err = Restore(ctx, RestoreOptions{Target: e.target, LogDir: filepath.Join(dir, "eventlog"), KeysDir: filepath.Join(dir, "keys"), Identities: []age.Identity{e.id}, Logger: quiet})
	if !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore over a log: %v", err)
	}
	// And a wrong passphrase opens nothing.
	_, wrong, _ := PassphraseKeys("not it", 10)
	_, err = Restore(ctx, RestoreOptions{Target: e.target, LogDir: filepath.Join(t.TempDir(), "eventlog"), KeysDir: filepath.Join(t.TempDir(), "keys"), Identities: []age.Identity{wrong}, Logger: quiet})
	if !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
}

// Following the log, every event is shipped within the RPO of its append
// (with slack for a loaded CI box); lag metrics say so; the segments are
// dense and each seq is in exactly one.
func TestShipFollowsWithinRPO(t *testing.T) {
	e := newEnv(t)
	s := e.shipper(nil)
	reg := prometheus.NewRegistry()
	if err := s.Register(reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var worst time.Duration
	for round := range 10 {
		last := e.append(20 + round)
		start := time.Now()
		for s.Lag().Shipped < last {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("round %d: shipped %d of %d after 10s", round, s.Lag().Shipped, last)
			}
			time.Sleep(5 * time.Millisecond)
		}
		worst = max(worst, time.Since(start))
		time.Sleep(time.Duration(round*20) * time.Millisecond)
	}
	// RPO is 200ms here: without the timed cut nothing would ship at all
	// (the segments never reach SegmentBytes); allow 15x for -race on a
	// shared, loaded 2-core box.
	if worst > 3*time.Second {
		t.Fatalf("worst append-to-shipped %s, RPO 200ms", worst)
	}
	if lag := s.Lag(); lag.Events != 0 || lag.Age != 0 {
		t.Fatalf("caught up but lag %+v", lag)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, n := range []string{"pdslog_backup_lag_events", "pdslog_backup_lag_seconds", "pdslog_backup_ship_lag_seconds", "pdslog_backup_segment_bytes_total"} {
		if !slices.Contains(names, n) {
			t.Errorf("metric %s missing (have %v)", n, names)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	segs := segmentsOf(t, e.target, s.Generation())
	if segs[len(segs)-1].Last != e.log.Head() {
		t.Fatalf("backup ends at %d, log at %d", segs[len(segs)-1].Last, e.log.Head())
	}
	t.Logf("worst append-to-shipped %s; %d segments; p99 lag %s", worst, len(segs), s.Stats().LagP99)
}

// Faults: the S3 service down for a while (lag grows, a warning says so,
// then shipping catches up, nothing lost); a shipper killed while its
// first upload hangs and later ones completed (the restart removes what
// lies beyond the hole and ships it again: no duplicate, no hole); the
// restart resumes the same generation.
func TestShipFaults(t *testing.T) {
	e := newEnv(t)
	var logs eventlogtest.SyncBuffer
	s := e.shipper(func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		o.LagWarn = 300 * time.Millisecond
		o.SegmentBytes = 4 << 10
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.append(50)
	waitShipped(t, s, e.log.Head())
	gen := s.Generation()

	e.s3.SetDown(true)
	last := e.append(200)
	time.Sleep(1500 * time.Millisecond)
	if lag := s.Lag(); lag.Events == 0 || lag.Age < time.Second {
		t.Fatalf("S3 down but lag %+v", lag)
	}
	if !strings.Contains(logs.String(), "backup lagging") {
		t.Fatalf("no lag warning while S3 was down:\n%s", logs.String())
	}
	e.s3.SetDown(false)
	waitShipped(t, s, last)
	if s.Stats().Errors == 0 {
		t.Fatal("no upload error counted while S3 was down")
	}

	// Hold the next segment PUT (the first of the next batch) while later
	// ones complete, then "crash" the shipper.
	var first sync.Once
	var heldKey string
	e.s3.Hold(func(r *http.Request) bool {
		held := false
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/segments/") {
			first.Do(func() { held, heldKey = true, r.URL.Path })
		}
		return held
	})
	for range 4 {
		e.append(40)
		time.Sleep(150 * time.Millisecond)
	}
	select {
	case <-e.s3.Held():
	case <-time.After(10 * time.Second):
		t.Fatal("no upload was held")
	}
	time.Sleep(500 * time.Millisecond) // later segments complete meanwhile
	cancel()
	e.s3.Release()
	<-done
	// Something beyond the held segment made it (a hole now).
	var after int
	_ = e.target.Objects.List(context.Background(), segmentPrefix(gen), "", func(o objstore.Object) error {
		if "/"+objstoretest.FakeBucket+"/pds/one/"+o.Key > heldKey {
			after++
		}
		return nil
	})
	t.Logf("held %s; %d segments completed after it", heldKey, after)
	if after == 0 {
		t.Fatal("no segment completed after the held one: the crash left no hole to test")
	}

	s2 := e.shipper(nil)
	if err := s2.CatchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if s2.Generation() != gen {
		t.Fatalf("restart started generation %s, was %s", s2.Generation(), gen)
	}
	segs := segmentsOf(t, e.target, gen) // no stale (orphans were deleted)
	next := eventlog.Seq(1)
	for _, r := range segs {
		if r.First != next {
			t.Fatalf("segment %s after seq %d", r.Key, next-1)
		}
		next = r.Last + 1
	}
	if next-1 != e.log.Head() {
		t.Fatalf("backup through %d, log %d", next-1, e.log.Head())
	}
	_, got, _ := e.restore(nil)
	sameLog(t, e.log, got, e.log.Head())
}

func waitShipped(t *testing.T, s *Shipper, seq eventlog.Seq) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.Lag().Shipped < seq {
		if time.Now().After(deadline) {
			t.Fatalf("shipped %d, want %d", s.Lag().Shipped, seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Point in time: a restore at a moment between two writes has the earlier
// and not the later; a restore at a seq stops there; both set the floor
// past everything shipped.
func TestRestorePointInTime(t *testing.T) {
	e := newEnv(t)
	e.append(30)
	time.Sleep(20 * time.Millisecond)
	a := e.append(1)
	time.Sleep(20 * time.Millisecond)
	at := time.Now()
	time.Sleep(20 * time.Millisecond)
	b := e.append(1)
	e.append(30)
	s := e.shipper(nil)
	if err := s.CatchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*RestoreOptions)
		want eventlog.Seq
		by   string
	}{
		{"at time", func(o *RestoreOptions) { o.AtTime = at }, a, "time"},
		{"at seq", func(o *RestoreOptions) { o.AtSeq = b }, b, "seq"},
		{"at the end", nil, e.log.Head(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, got, _ := e.restore(tc.mod)
			if res.Restored != tc.want || res.StoppedBy != tc.by || res.Shipped != e.log.Head() || res.SeqFloor < e.log.Head() {
				t.Fatalf("result %+v; want restored %d by %q", res, tc.want, tc.by)
			}
			sameLog(t, e.log, got, tc.want)
			ev, err := got.Get(context.Background(), tc.want+1)
			if tc.want < e.log.Head() && (err != nil || ev.Kind != eventlog.KindTombstone) {
				t.Fatalf("seq %d after the restore point: %+v %v (want a floor tombstone)", tc.want+1, ev, err)
			}
		})
	}
}

// A deleted account's events leave the backup: after compaction no
// segment of any generation holds one of its events from before its
// deletion, and its blobs are gone from the backup; a restore has only
// tombstones for them.
func TestCompactPurges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.append(200)
	victim := e.stream.Repos[2].DID
	c := e.uploadBlob(victim, []byte("victim's blob"))
	e.append(50)
	s := e.shipper(func(o *Options) { o.SegmentBytes = 8 << 10 })
	if err := s.CatchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// The account is deleted on the server: the event, then the purge.
	seq, err := e.log.Append(ctx, &eventlog.Event{Kind: eventlog.KindAccount, DID: victim, Account: &eventlog.Account{Status: "deleted"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Purge(ctx, victim, seq); err != nil {
		t.Fatal(err)
	}
	e.stream.Replace(victim)
	e.append(20)
	held := func() int {
		n := 0
		gens, _ := listGenerations(ctx, e.target.Objects)
		for _, g := range gens {
			c := newChain(func(r segRef) error {
				data, err := objstore.ReadAll(ctx, e.target.Objects, r.Key, MaxSegmentRaw)
				if err != nil {
					return err
				}
				seg, err := DecodeSegment(data)
				if err != nil {
					return err
				}
				for i, v := range seg.Values {
					ev, _ := eventlog.DecodeStored(v)
					if ev.DID == victim && seg.Header.First+eventlog.Seq(i) < seq {
						n++
					}
				}
				return nil
			})
			if err := listSegments(ctx, e.target.Objects, g, c.add); err != nil {
				t.Fatal(err)
			}
			if err := c.done(); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	before := held()
	if before == 0 {
		t.Fatal("the victim had no events in the backup: the test checks nothing")
	}
	if _, err := e.target.Blobs.Stat(ctx, victim, c); err != nil {
		t.Fatalf("victim's blob not in the backup before compaction: %v", err)
	}
	if err := s.CatchUp(ctx, 0); err != nil { // ships the deletion, then compacts
		t.Fatal(err)
	}
	if n := held(); n != 0 {
		t.Fatalf("%d of the deleted account's events (of %d) still in the backup", n, before)
	}
	if _, err := e.target.Blobs.Stat(ctx, victim, c); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("victim's blob still in the backup: %v", err)
	}
	m, err := readManifest(ctx, e.target.Objects, s.Generation())
	if err != nil || len(m.Purges) != 0 {
		t.Fatalf("manifest purges %+v %v", m, err)
	}
	segmentsOf(t, e.target, s.Generation()) // old versions deleted
	_, got, _ := e.restore(nil)
	sameLog(t, e.log, got, e.log.Head())
	if _, err := got.RepoHead(ctx, victim); !errors.Is(err, eventlog.ErrNotFound) {
		t.Fatalf("deleted account's head restored: %v", err)
	}
}

// A restored data dir ships into a new generation (its log differs from
// the old history after the restore point), re-shipping blobs never: they
// are content-addressed and already there. The newest generation is the
// default restore once it holds newer events.
func TestNewGenerationAfterRestore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.append(100)
	did := e.stream.Repos[0].DID
	e.uploadBlob(did, []byte("shared blob"))
	s := e.shipper(nil)
	if err := s.CatchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	old := s.Generation()
	res, got, dir := e.restore(func(o *RestoreOptions) { o.AtSeq = 60 })
	// Ship the restored data dir (its own state file) into the same URL.
	e2 := &env{t: t, dir: dir, log: got, blobs: e.blobs, s3: e.s3, target: e.target, url: e.url, rec: e.rec, id: e.id}
	blobPuts := func() int {
		n := 0
		for _, k := range e.s3.Puts() {
			if strings.Contains(k, "/blobs/") {
				n++
			}
		}
		return n
	}
	putsBefore := blobPuts()
	if _, err := got.Append(ctx, &eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{}}); err != nil {
		t.Fatal(err)
	}
	s2 := e2.shipper(nil)
	if err := s2.CatchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if s2.Generation() == old {
		t.Fatal("restored data dir shipped into the old generation")
	}
	if blobPuts() != putsBefore {
		t.Fatal("a blob already in the backup was uploaded again")
	}
	latest, err := LatestGeneration(ctx, e.target)
	if err != nil || latest.Generation != s2.Generation() {
		t.Fatalf("latest generation %v %v, want %s", latest, err, s2.Generation())
	}
	st, err := ReadStatus(ctx, e.target, "")
	if err != nil || st.Head != got.Head() || len(st.Generations) != 2 {
		t.Fatalf("status %+v %v", st, err)
	}
	if res.SeqFloor < e.log.Head() {
		t.Fatalf("floor %d", res.SeqFloor)
	}
}

// A backup that fails verification restores nothing: the first bad event
// is reported with its seq, and no log appears at LogDir.
func TestRestoreRefusesWhatFailsCheck(t *testing.T) {
	e := newEnv(t)
	e.append(200)
	s := e.shipper(nil)
	if err := s.CatchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logDir := filepath.Join(dir, "eventlog")
	_, err := Restore(context.Background(), RestoreOptions{Target: e.target, LogDir: logDir, KeysDir: filepath.Join(dir, "keys"),
		Identities: []age.Identity{e.id}, Logger: quiet, Check: func(_ context.Context, ev *eventlog.Event) error {
			if ev.Seq == 123 {
				return errors.New("bad signature")
			}
			return nil
		}})
	var ve *eventlog.VerifyError
	if !errors.As(err, &ve) || ve.Seq != 123 || !strings.Contains(ve.Reason, "bad signature") {
		t.Fatalf("got %v, want a VerifyError at seq 123", err)
	}
	for _, p := range []string{logDir, logDir + ".restoring"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a failed restore left %s: %v", p, err)
		}
	}
}

// A server writing a little at a time cuts many small segments; Compact
// merges them (leaving the newest alone), and the backup restores the same.
func TestCompactMergesSmallSegments(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.shipper(func(o *Options) { o.SegmentBytes = 64 << 10 })
	for range 12 {
		e.append(3)
		if err := s.CatchUp(ctx, 0); err != nil { // also compacts: merges as it goes
			t.Fatal(err)
		}
	}
	before := s.Stats().Segments
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	segs := segmentsOf(t, e.target, s.Generation())
	if before < 12 || len(segs) > 3 {
		t.Fatalf("%d segments uploaded, %d left after merging", before, len(segs))
	}
	if segs[len(segs)-1].Last != e.log.Head() {
		t.Fatalf("backup ends at %d, log at %d", segs[len(segs)-1].Last, e.log.Head())
	}
	_, got, _ := e.restore(nil)
	sameLog(t, e.log, got, e.log.Head())
	t.Logf("%d segments uploaded, %d after merging", before, len(segs))
}

// Blobs already in S3/R2 are recorded, not copied: the manifest names
// their bucket, no blob object is written to the backup, and a restore
// reports where they are and copies none.
func TestExternalBlobsAreNotCopied(t *testing.T) {
	e := newEnv(t)
	did := e.stream.Repos[0].DID
	e.append(20)
	e.uploadBlob(did, []byte("a blob the server keeps in S3"))
	s := e.shipper(func(o *Options) {
		o.ExternalBlobs = &BlobsInfo{Location: BlobsExternal, Bucket: "pds-blobs", Endpoint: "https://r2.example"}
	})
	if err := s.CatchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	for _, k := range e.s3.Puts() {
		if strings.Contains(k, "/blobs/") {
			t.Fatalf("blob copied to the backup: %s", k)
		}
	}
	m, err := readManifest(context.Background(), e.target.Objects, s.Generation())
	if err != nil || m.Blobs != (BlobsInfo{Location: BlobsExternal, Bucket: "pds-blobs", Endpoint: "https://r2.example"}) {
		t.Fatalf("manifest blobs %+v %v", m, err)
	}
	res, _, _ := e.restore(nil)
	if res.BlobLocation.Location != BlobsExternal || res.BlobLocation.Bucket != "pds-blobs" || res.Blobs != 0 {
		t.Fatalf("restore result %+v", res)
	}
}
