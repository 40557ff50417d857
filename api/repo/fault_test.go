package repo_test

import (
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/pdslog/pdslog/api/apitest"
)

// A disk that stops syncing the log's WAL (fsync EIO, or ENOSPC on write)
// under a running server: the write that cannot be made durable answers
// 503 ServiceUnavailable, is not acknowledged anywhere (log head, record,
// repo head), what was acknowledged before stays readable, and the log
// keeps refusing writes (fail-stop until the server is restarted) even once
// the disk is healthy again.
func TestWriteOnFailingDisk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		kinds []errorfs.OpKind
	}{
		{"fsync_EIO", fmt.Errorf("injected fsync failure: %w", syscall.EIO), []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}},
		{"write_ENOSPC", syscall.ENOSPC, []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
				if !strings.HasSuffix(op.Path, ".log") {
					return nil
				}
				for _, k := range tc.kinds {
					if op.Kind == k {
						return tc.err
					}
				}
				return nil
			})}
			env := apitest.NewOnFS(t, errorfs.Wrap(vfs.Default, toggle))
			a := env.CreateAccount()
			before := create(t, env, a, "", "acknowledged")
			head := env.Log.Head()

			toggle.On()
			failedWrites := func(when string) {
				t.Helper()
				single, batch := tid(), tid()
				for i, w := range []struct {
					nsid string
					body map[string]any
				}{
					{"createRecord", map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": single, "record": post("lost")}},
					{"applyWrites", map[string]any{"repo": a.DID, "writes": []any{map[string]any{
						"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": batch, "value": post("lost")}}}},
				} {
					r := env.Do("POST", "/xrpc/com.atproto.repo."+w.nsid, nil, a.Token, w.body)
					if r.Status != 503 || r.ErrorName() != "ServiceUnavailable" {
						t.Fatalf("%s %s (%d): %d %s, want 503 ServiceUnavailable", when, w.nsid, i, r.Status, r.Body)
					}
				}
				if got := env.Log.Head(); got != head {
					t.Fatalf("%s: log head moved to %d, want %d", when, got, head)
				}
				for _, rkey := range []string{single, batch} {
					if r := getRecord(env, a.DID.String(), rkey); r.Status != 400 || r.ErrorName() != "RecordNotFound" {
						t.Fatalf("%s: unacknowledged record %s: %d %s", when, rkey, r.Status, r.Body)
					}
				}
				// The failed commit's repo head sits in Pebble's memtable,
				// so the log cannot name this repo's durable head until it
				// is reopened: 503, never the unacknowledged commit, never
				// a 500.
				r := env.Do("GET", "/xrpc/com.atproto.sync.getLatestCommit", url.Values{"did": {a.DID.String()}}, "", nil)
				if r.Status != 503 || r.ErrorName() != "ServiceUnavailable" {
					t.Fatalf("%s: getLatestCommit: %d %s, want 503 ServiceUnavailable", when, r.Status, r.Body)
				}
				rkey := before.URI[strings.LastIndex(before.URI, "/")+1:]
				var rec recordOut
				if r := getRecord(env, a.DID.String(), rkey); r.Status != 200 {
					t.Fatalf("%s: acknowledged record: %d %s", when, r.Status, r.Body)
				} else if r.JSON(t, &rec); rec.CID != before.CID {
					t.Fatalf("%s: acknowledged record has cid %s, want %s", when, rec.CID, before.CID)
				}
			}
			failedWrites("during")
			toggle.Off()
			failedWrites("after")
		})
	}
}
