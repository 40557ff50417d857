package mirror

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/mst/car"
	"github.com/pdslog/pdslog/projections/blobs"
)

// Tables, in the order a request writes them (any order is correct: no
// statement reads another table of a later group; this one groups like
// rows together). record_takedown rows go with the record rows (tRecord),
// in event order: a takedown applies only to a record the repo holds.
const (
	tAccount = iota
	tRepoRoot
	tCommitLog
	tBlockstore
	tRecord
	tBlob
	tBlobUsage
	tSigningKey
	tSyncLog
	tTrash
	numTables
)

// DIDTables are the tables with a did column: a deleted account's rows
// are removed from each.
var didTables = []struct {
	id   int
	name string
}{
	{tAccount, "account_state"}, {tRepoRoot, "repo_root"}, {tCommitLog, "commit_log"}, {tBlockstore, "blockstore"},
	{tRecord, "record"}, {tBlob, "blob"}, {tBlobUsage, "blob_usage"},
	{tSigningKey, "signing_key"}, {tSyncLog, "sync_log"}, {tRecord, "record_takedown"},
}

// template is a statement shape. A multi-row template is "head VALUES
// (row), (row) … tail": consecutive ops of one template share a statement.
type template struct {
	table int
	head  string // up to VALUES, or the whole statement when not multi
	row   string // one row's placeholders, e.g. (?, ?, ?)
	tail  string // after the rows (ON CONFLICT …)
	cols  int    // parameters per row
	multi bool
}

// maxRows is how many rows of t fit D1's 100 parameters.
func (t *template) maxRows() int { return 100 / t.cols }

func insert(table int, head, row, tail string, cols int) *template {
	return &template{table: table, head: head + " VALUES ", row: row, tail: tail, cols: cols, multi: true}
}

var (
	tmplAccountEnsure = insert(tAccount, "INSERT INTO account_state (did, handle, active, status, created_at, seq)",
		"(?, NULL, 1, NULL, ?, ?)", " ON CONFLICT (did) DO NOTHING", 3)
	tmplAccountIdentity = insert(tAccount, "INSERT INTO account_state (did, handle, active, status, created_at, seq)",
		"(?, NULLIF(?, ''), 1, NULL, ?, ?)",
		" ON CONFLICT (did) DO UPDATE SET handle = COALESCE(excluded.handle, account_state.handle), seq = excluded.seq WHERE excluded.seq > account_state.seq", 4)
	tmplAccountStatus = insert(tAccount, "INSERT INTO account_state (did, handle, active, status, created_at, seq)",
		"(?, NULL, ?, NULLIF(?, ''), ?, ?)",
		" ON CONFLICT (did) DO UPDATE SET active = excluded.active, status = excluded.status, seq = excluded.seq WHERE excluded.seq > account_state.seq", 5)
	tmplRepoRoot = insert(tRepoRoot, "INSERT INTO repo_root (did, commit_cid, rev, data_cid, seq)", "(?, ?, ?, ?, ?)",
		" ON CONFLICT (did) DO UPDATE SET commit_cid = excluded.commit_cid, rev = excluded.rev, data_cid = excluded.data_cid, seq = excluded.seq WHERE excluded.seq > repo_root.seq", 5)
	tmplCommitLog = insert(tCommitLog, "INSERT INTO commit_log (seq, did, cid, rev, data, sig, ts)", "(?, ?, ?, ?, ?, ?, ?)",
		" ON CONFLICT (seq) DO NOTHING", 7)
	tmplBlock = insert(tBlockstore, "INSERT INTO blockstore (did, cid, bytes, key, seq)", "(?, ?, NULLIF(?, ''), NULLIF(?, ''), ?)",
		" ON CONFLICT (did, cid) DO NOTHING", 5)
	tmplRecord = insert(tRecord, "INSERT INTO record (uri, did, cid, json, created_at, seq)", "(?, ?, ?, NULLIF(?, ''), ?, ?)",
		" ON CONFLICT (uri) DO UPDATE SET cid = excluded.cid, json = excluded.json, seq = excluded.seq WHERE excluded.seq > record.seq", 6)
	tmplBlob = insert(tBlob, "INSERT INTO blob (cid, did, key, mime, size, uploaded_at, quarantined, seq)", "(?, ?, ?, ?, ?, ?, 0, ?)",
		" ON CONFLICT (did, cid) DO NOTHING", 7)
	tmplBlobUsage = insert(tBlobUsage, "INSERT INTO blob_usage (did, record_uri, key, cid, repo_rev, seq)", "(?, ?, ?, ?, ?, ?)",
		" ON CONFLICT (did, record_uri, key) DO UPDATE SET cid = excluded.cid, repo_rev = excluded.repo_rev, seq = excluded.seq WHERE excluded.seq > blob_usage.seq", 6)
	tmplSigningKey = insert(tSigningKey, "INSERT INTO signing_key (did, public_key, seq)", "(?, ?, ?)",
		" ON CONFLICT (did) DO UPDATE SET public_key = excluded.public_key, seq = excluded.seq WHERE excluded.seq > signing_key.seq", 3)
	tmplSyncLog = insert(tSyncLog, "INSERT INTO sync_log (seq, did, cid, rev, data_cid)", "(?, ?, ?, ?, ?)",
		" ON CONFLICT (seq) DO NOTHING", 5)
	tmplTrash = insert(tTrash, "INSERT INTO r2_trash (key, seq)", "(?, ?)",
		" ON CONFLICT (key) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > r2_trash.seq", 2)

	// A takedown of a record the repo holds (as the records projection
	// applies it): one last written before the takedown, so that replayed
	// after the record was deleted and made again it changes nothing.
	tmplTakedown = &template{table: tRecord, head: "INSERT INTO record_takedown (uri, did, seq) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM record WHERE uri = ? AND seq < ?)" +
		" ON CONFLICT (uri) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > record_takedown.seq"}
	tmplTakedownReversed = &template{table: tRecord, head: "DELETE FROM record_takedown WHERE uri = ? AND seq < ?"}

	tmplBlobDelete     = &template{table: tBlob, head: "DELETE FROM blob WHERE did = ? AND cid = ? AND seq < ?"}
	tmplBlobQuarantine = &template{table: tBlob, head: "UPDATE blob SET quarantined = ?, seq = ? WHERE did = ? AND cid = ? AND seq < ?"}
)

// op is one row (of a multi-row template) or one whole statement.
type op struct {
	tmpl *template
	sql  string // for a statement built per event (IN lists); "" means tmpl.head
	args []string
	key  string // dedup key within a request (blocks); "" means none
}

func (o *op) size() int {
	n := len(o.sql)
	for _, a := range o.args {
		n += len(a) + 8
	}
	return n
}

// upload is an R2 object a request's rows name.
type upload struct {
	key  string // blobs/DID/CID or blockstore/DID/CID
	did  syntax.DID
	cid  cid.Cid
	seq  eventlog.Seq
	data []byte // a block's bytes; nil for a blob (read from the local store)
}

// trash is an R2 object or prefix (ending in "/") to delete once the rows
// naming it are gone.
type trash struct {
	key string
	seq eventlog.Seq
}

// translated is what one event becomes.
type translated struct {
	ops     []op
	uploads []upload
	trash   []trash
}

// R2 key prefixes.
const (
	blobPrefix  = "blobs/"
	blockPrefix = "blockstore/"
)

func blobKey(did syntax.DID, c string) string  { return blobPrefix + string(did) + "/" + c }
func blockKey(did syntax.DID, c string) string { return blockPrefix + string(did) + "/" + c }

func itoa(n int64) string        { return strconv.FormatInt(n, 10) }
func seqs(s eventlog.Seq) string { return strconv.FormatUint(uint64(s), 10) }
func millis(ev *eventlog.Event) string {
	t := ev.Time.Time()
	if t.IsZero() {
		return "0"
	}
	return itoa(t.UnixMilli())
}

// marshalJSON is json.Marshal without HTML escaping.
func marshalJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// translate returns the rows, uploads and trash of one event. inline is
// the largest encoded value kept in a D1 row.
func translate(ev *eventlog.Event, inline int) (*translated, error) {
	t := &translated{}
	did := string(ev.DID)
	seq := seqs(ev.Seq)
	switch ev.Kind {
	case eventlog.KindCommit:
		c := ev.Commit
		t.ops = append(t.ops,
			op{tmpl: tmplAccountEnsure, args: []string{did, millis(ev), seq}},
			op{tmpl: tmplRepoRoot, args: []string{did, c.Commit.String(), string(c.Rev), c.Data.String(), seq}})
		blocks, err := t.addBlocks(ev, c.Blocks, inline)
		if err != nil {
			return nil, err
		}
		commitBlock, ok := blocks[c.Commit]
		if !ok {
			return nil, fmt.Errorf("mirror: seq %d: commit block %s missing from the commit's blocks", ev.Seq, c.Commit)
		}
		data, sig, err := commitJSON(commitBlock)
		if err != nil {
			return nil, fmt.Errorf("mirror: seq %d: commit block: %w", ev.Seq, err)
		}
		t.ops = append(t.ops, op{tmpl: tmplCommitLog, args: []string{seq, did, c.Commit.String(), string(c.Rev), data, sig, millis(ev)}})
		if err := t.addRecords(ev, blocks, inline); err != nil {
			return nil, err
		}
	case eventlog.KindSync:
		s := ev.Sync
		t.ops = append(t.ops,
			op{tmpl: tmplAccountEnsure, args: []string{did, millis(ev), seq}},
			op{tmpl: tmplRepoRoot, args: []string{did, s.Commit.String(), string(s.Rev), s.Data.String(), seq}},
			op{tmpl: tmplSyncLog, args: []string{seq, did, s.Commit.String(), string(s.Rev), s.Data.String()}})
		if _, err := t.addBlocks(ev, s.Blocks, inline); err != nil {
			return nil, err
		}
	case eventlog.KindIdentity:
		t.ops = append(t.ops, op{tmpl: tmplAccountIdentity, args: []string{did, string(ev.Identity.Handle), millis(ev), seq}})
	case eventlog.KindAccount:
		if ev.Account.Status == "deleted" {
			for _, tb := range didTables {
				t.ops = append(t.ops, op{tmpl: &template{table: tb.id, head: "DELETE FROM " + tb.name + " WHERE did = ? AND seq < ?"}, args: []string{did, seq}})
			}
			t.trash = append(t.trash, trash{blobPrefix + did + "/", ev.Seq}, trash{blockPrefix + did + "/", ev.Seq})
			break
		}
		active := "0"
		if ev.Account.Active {
			active = "1"
		}
		t.ops = append(t.ops, op{tmpl: tmplAccountStatus, args: []string{did, active, ev.Account.Status, millis(ev), seq}})
	case eventlog.KindPrivate:
		switch ev.Private.Type {
		case events.TypeSigningKey:
			return t, t.addSigningKey(ev)
		case events.TypeRecordTakedown:
			return t, t.addTakedown(ev)
		}
		return t, t.addBlobEvent(ev)
	}
	return t, nil
}

// addBlocks adds rows for every block of a CAR slice and returns them.
func (t *translated) addBlocks(ev *eventlog.Event, slice []byte, inline int) (map[cid.Cid][]byte, error) {
	_, bs, err := car.Unmarshal(slice, nil)
	if err != nil {
		return nil, fmt.Errorf("mirror: seq %d: read blocks: %w", ev.Seq, err)
	}
	out := make(map[cid.Cid][]byte, len(bs))
	did := string(ev.DID)
	for _, b := range bs {
		out[b.CID] = b.Data
		c := b.CID.String()
		enc, key := base64.StdEncoding.EncodeToString(b.Data), ""
		if len(enc) > inline {
			enc, key = "", blockKey(ev.DID, c)
			t.uploads = append(t.uploads, upload{key: key, did: ev.DID, cid: b.CID, seq: ev.Seq, data: b.Data})
		}
		t.ops = append(t.ops, op{tmpl: tmplBlock, args: []string{did, c, enc, key, seqs(ev.Seq)}, key: did + " " + c})
	}
	return out, nil
}

// commitJSON returns a signed commit block as JSON, and its signature.
func commitJSON(b []byte) (string, string, error) {
	obj, err := atdata.UnmarshalCBOR(b)
	if err != nil {
		return "", "", err
	}
	sig, _ := obj["sig"].(atdata.Bytes)
	data, err := marshalJSON(obj)
	if err != nil {
		return "", "", err
	}
	return data, base64.StdEncoding.EncodeToString(sig), nil
}

// addRecords adds the rows of a commit's record operations: the record
// (or its deletion) and its blob usage.
func (t *translated) addRecords(ev *eventlog.Event, blocks map[cid.Cid][]byte, inline int) error {
	did := string(ev.DID)
	seq := seqs(ev.Seq)
	var deleted, rewritten []string
	var usage []op
	for _, o := range ev.Commit.Ops {
		uri := "at://" + did + "/" + o.Path
		if o.Action == eventlog.ActionDelete {
			deleted = append(deleted, uri)
			rewritten = append(rewritten, uri)
			continue
		}
		if o.Action == eventlog.ActionUpdate {
			rewritten = append(rewritten, uri)
		}
		data, ok := blocks[o.CID]
		if !ok {
			return fmt.Errorf("mirror: seq %d: record %s (%s) missing from the commit's blocks", ev.Seq, o.Path, o.CID)
		}
		js := ""
		var refs []blobs.Ref
		if rec, err := atdata.UnmarshalCBOR(data); err == nil {
			refs = blobs.RefsOf(rec)
			if js, err = marshalJSON(rec); err != nil {
				return fmt.Errorf("mirror: seq %d: record %s as JSON: %w", ev.Seq, o.Path, err)
			}
		}
		if len(js) > inline {
			js = "" // NULL: read the record's block
		}
		t.ops = append(t.ops, op{tmpl: tmplRecord, args: []string{uri, did, o.CID.String(), js, millis(ev), seq}})
		for _, r := range refs {
			usage = append(usage, op{tmpl: tmplBlobUsage, args: []string{did, uri, blobKey(ev.DID, r.CID), r.CID, string(ev.Commit.Rev), seq}})
		}
	}
	if len(deleted) > 0 {
		t.ops = append(t.ops, inList(tRecord, "DELETE FROM record WHERE seq < ? AND uri IN ", []string{seq}, deleted)...)
		t.ops = append(t.ops, clearTakedowns(seq, deleted)...)
	}
	if len(rewritten) > 0 {
		t.ops = append(t.ops, inList(tBlobUsage, "DELETE FROM blob_usage WHERE did = ? AND seq < ? AND record_uri IN ", []string{did, seq}, rewritten)...)
	}
	t.ops = append(t.ops, usage...)
	return nil
}

// inList returns statements "prefix (?, …)" over items, as many as D1's
// parameter limit needs.
func inList(table int, prefix string, fixed, items []string) []op {
	var out []op
	per := 100 - len(fixed)
	for len(items) > 0 {
		n := min(per, len(items))
		sql := prefix + "(" + strings.Repeat("?, ", n-1) + "?)"
		args := append(append([]string{}, fixed...), items[:n]...)
		out = append(out, op{tmpl: &template{table: table, head: sql}, sql: sql, args: args})
		items = items[n:]
	}
	return out
}

// addSigningKey adds the public half of an account's new repo signing key
// (the event holds the private key, which is not mirrored).
func (t *translated) addSigningKey(ev *eventlog.Event) error {
	var k events.SigningKey
	if err := events.Unmarshal(ev.Private.Data, &k); err != nil {
		return fmt.Errorf("mirror: seq %d: signing key: %w", ev.Seq, err)
	}
	pub, err := k.Key.PublicKey()
	if err != nil {
		return fmt.Errorf("mirror: seq %d: signing key: %w", ev.Seq, err)
	}
	t.ops = append(t.ops, op{tmpl: tmplSigningKey, args: []string{string(ev.DID), pub.Multibase(), seqs(ev.Seq)}})
	return nil
}

// clearTakedowns returns the statements that end the takedowns of records
// a commit of seq deletes: the takedown goes with the record.
func clearTakedowns(seq string, deleted []string) []op {
	return inList(tRecord, "DELETE FROM record_takedown WHERE seq < ? AND uri IN ", []string{seq}, deleted)
}

// addTakedown adds the row of a record takedown, or removes it for its
// reversal.
func (t *translated) addTakedown(ev *eventlog.Event) error {
	var d events.RecordTakedown
	if err := events.Unmarshal(ev.Private.Data, &d); err != nil {
		return fmt.Errorf("mirror: seq %d: decode %s: %w", ev.Seq, events.TypeRecordTakedown, err)
	}
	uri := "at://" + string(ev.DID) + "/" + d.Collection + "/" + d.RKey
	seq := seqs(ev.Seq)
	if d.Applied {
		t.ops = append(t.ops, op{tmpl: tmplTakedown, args: []string{uri, string(ev.DID), seq, uri, seq}})
	} else {
		t.ops = append(t.ops, op{tmpl: tmplTakedownReversed, args: []string{uri, seq}})
	}
	return nil
}

// addBlobEvent adds the rows of the blobs projection's private events;
// every other private event is not mirrored.
func (t *translated) addBlobEvent(ev *eventlog.Event) error {
	did := string(ev.DID)
	seq := seqs(ev.Seq)
	switch ev.Private.Type {
	case events.TypeBlobUploaded:
		var u events.BlobUploaded
		if err := json.Unmarshal(ev.Private.Data, &u); err != nil {
			return fmt.Errorf("mirror: seq %d: decode %s: %w", ev.Seq, events.TypeBlobUploaded, err)
		}
		c, err := cid.Parse(u.CID)
		if err != nil {
			return fmt.Errorf("mirror: seq %d: blob cid %q: %w", ev.Seq, u.CID, err)
		}
		key := blobKey(ev.DID, u.CID)
		t.uploads = append(t.uploads, upload{key: key, did: ev.DID, cid: c, seq: ev.Seq})
		t.ops = append(t.ops, op{tmpl: tmplBlob, args: []string{u.CID, did, key, u.MimeType, itoa(u.Size), millis(ev), seq}})
	case events.TypeBlobDeleted:
		var d events.BlobDeleted
		if err := json.Unmarshal(ev.Private.Data, &d); err != nil {
			return fmt.Errorf("mirror: seq %d: decode %s: %w", ev.Seq, events.TypeBlobDeleted, err)
		}
		t.ops = append(t.ops, op{tmpl: tmplBlobDelete, args: []string{did, d.CID, seq}})
		t.trash = append(t.trash, trash{blobKey(ev.DID, d.CID), ev.Seq})
	case events.TypeBlobQuarantine:
		var q events.BlobQuarantine
		if err := json.Unmarshal(ev.Private.Data, &q); err != nil {
			return fmt.Errorf("mirror: seq %d: decode %s: %w", ev.Seq, events.TypeBlobQuarantine, err)
		}
		on := "0"
		if q.On {
			on = "1"
		}
		t.ops = append(t.ops, op{tmpl: tmplBlobQuarantine, args: []string{on, seq, did, q.CID, seq}})
	}
	return nil
}
