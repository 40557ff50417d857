package pds_test

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
	"github.com/pdslog/pdslog/eventlog/events"
)

// exposed lists what under root group or others may read or enter.
func exposed(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel+" "+info.Mode().Perm().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDataDirPrivate: in a data dir that already exists and is readable
// by everyone (0755, as a volume or a mkdir often makes it), every store
// pdslog creates — the log, the projections, the blobs, the keys — is
// created 0700, its files 0600, whatever the umask; a store left readable
// by an older pdslog is made private on open; and the open dir itself is
// warned about (not changed: it is the operator's).
func TestDataDirPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	var logs eventlogtest.SyncBuffer
	open := func() *pds.PDS {
		t.Helper()
		p, err := pds.Open(dir, &pds.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open()
	ctx := context.Background()
	// Write something, so Pebble has made its WAL, manifest and tables.
	seq, err := p.Log.Append(ctx, events.Must("did:plc:ewvi7nxzyoun6zhxrhs64oiz", &events.AccountCreated{Handle: "perm.test", Email: "secret@example.com", PasswordHash: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CatchUp(ctx, nil); err != nil || p.Log.Head() != seq {
		t.Fatal(err)
	}
	if bad := exposed(t, dir); len(bad) > 0 {
		t.Errorf("readable by others in a 0755 data dir:\n%s", strings.Join(bad, "\n"))
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), dir) {
		t.Errorf("no warning about the 0755 data dir:\n%s", logs.String())
	}
	p.Close()

	// A data dir an older pdslog left readable is made private on open.
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		if d.IsDir() {
			return os.Chmod(path, 0o755)
		}
		return os.Chmod(path, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	p = open()
	defer p.Close()
	if bad := exposed(t, dir); len(bad) > 0 {
		t.Errorf("still readable by others after reopening:\n%s", strings.Join(bad, "\n"))
	}
}
