package eventlog_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/pdslog/pdslog/eventlog"
)

// exposedUnder lists what under root group or others may read or enter.
func exposedUnder(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			out = append(out, path+" "+info.Mode().Perm().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A log opened, or created for an import (restore), in a directory
// readable by everyone is private: 0700, every Pebble file 0600.
func TestLogsArePrivate(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, eventlog.KeySize)
	dir := filepath.Join(parent, "log")
	l, err := eventlog.Open(dir, &eventlog.Options{SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), &eventlog.Event{Kind: eventlog.KindIdentity, DID: "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
		Identity: &eventlog.Identity{Handle: "perm.test"}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if bad := exposedUnder(t, dir); len(bad) > 0 {
		t.Errorf("log readable by others: %v", bad)
	}
	imp := filepath.Join(parent, "restored")
	im, err := eventlog.OpenImporter(imp, &eventlog.ImportOptions{SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if bad := exposedUnder(t, imp); len(bad) > 0 {
		t.Errorf("imported log readable by others: %v", bad)
	}
}
