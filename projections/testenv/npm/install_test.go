package npm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/projections/testenv"
)

// writeFile writes content to dir/name, making its directory.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lock is a package-lock.json (lockfileVersion 3) for a project p that
// depends on a@1.0.0 (which depends on b@2.0.0).
const lock = `{
  "name": "p", "version": "0.1.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": {"name": "p", "version": "0.1.0", "dependencies": {"a": "1.0.0"}},
    "node_modules/a": {"version": "1.0.0", "resolved": "https://registry.npmjs.org/a/-/a-1.0.0.tgz"},
    "node_modules/a/node_modules/b": {"version": "2.0.0"}
  }
}`

func TestNeedsInstall(t *testing.T) {
	tests := []struct {
		name string
		// files under the package dir; "" content means absent.
		lock, installed string
		want            string // substring of why; "" means up to date
		wantErr         string // substring of the error
	}{
		{
			name: "node_modules missing",
			lock: lock,
			want: "node_modules is not installed",
		},
		{
			name: "version differs",
			lock: lock,
			installed: `{"packages": {
				"node_modules/a": {"version": "1.0.0"},
				"node_modules/a/node_modules/b": {"version": "2.0.1"}}}`,
			want: `node_modules differs from package-lock.json (node_modules/a/node_modules/b: have "2.0.1", want "2.0.0")`,
		},
		{
			name:      "package not installed",
			lock:      lock,
			installed: `{"packages": {"node_modules/a/node_modules/b": {"version": "2.0.0"}}}`,
			want:      `(node_modules/a: have "", want "1.0.0")`,
		},
		{
			// npm's record leaves out the root package (""); extra
			// installed packages are not checked.
			name: "matching",
			lock: lock,
			installed: `{"name": "p", "packages": {
				"node_modules/a": {"version": "1.0.0"},
				"node_modules/a/node_modules/b": {"version": "2.0.0"},
				"node_modules/extra": {"version": "9.9.9"}}}`,
			want: "",
		},
		{
			// An optional package for another platform is in the lock
			// but not installed; an optional one that is installed is
			// still checked.
			name: "optional package skipped",
			lock: `{"lockfileVersion": 3, "packages": {
				"node_modules/a": {"version": "1.0.0"},
				"node_modules/bin-other-os": {"version": "1.0.0", "optional": true},
				"node_modules/bin-this-os": {"version": "1.0.0", "optional": true}}}`,
			installed: `{"packages": {
				"node_modules/a": {"version": "1.0.0"},
				"node_modules/bin-this-os": {"version": "0.9.0", "optional": true}}}`,
			want: `(node_modules/bin-this-os: have "0.9.0", want "1.0.0")`,
		},
		{
			name:      "npm's record unreadable",
			lock:      lock,
			installed: `{"packages": `,
			want:      "node_modules is unreadable (",
		},
		{
			name:    "no package-lock.json",
			wantErr: "package-lock.json",
		},
		{
			name:    "package-lock.json unreadable",
			lock:    `not json`,
			wantErr: "package-lock.json: invalid character",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.lock != "" {
				writeFile(t, dir, "package-lock.json", tt.lock)
			}
			if tt.installed != "" {
				writeFile(t, dir, "node_modules/.package-lock.json", tt.installed)
			}
			why, err := needsInstall(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "npm: ") || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("needsInstall = %q, %v; want an npm: error containing %q", why, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" && why != "" || !strings.Contains(why, tt.want) {
				t.Fatalf("needsInstall = %q, want %q", why, tt.want)
			}
		})
	}
}

// localPackage writes a project that depends on a package in its own
// directory (file:./a), with the package-lock.json `npm install` writes
// for it, so that `npm ci` runs without the network.
func localPackage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "a/package.json", `{"name": "a", "version": "1.2.3"}`)
	writeFile(t, dir, "package.json", `{"name": "p", "version": "0.0.0", "dependencies": {"a": "file:./a"}}`)
	writeFile(t, dir, "package-lock.json", `{
  "name": "p", "version": "0.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": {"name": "p", "version": "0.0.0", "dependencies": {"a": "file:./a"}},
    "a": {"version": "1.2.3"},
    "node_modules/a": {"resolved": "a", "link": true}
  }
}`)
	return dir
}

// TestInstall runs the real npm: Install installs what is missing, once
// per dir within the process.
func TestInstall(t *testing.T) {
	testenv.Slow(t, "runs npm/Node.js")
	dir := localPackage(t)
	if why, err := needsInstall(dir); err != nil || why != "node_modules is not installed" {
		t.Fatalf("before Install: needsInstall = %q, %v", why, err)
	}
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	if why, err := needsInstall(dir); err != nil || why != "" {
		t.Fatalf("after Install: needsInstall = %q, %v", why, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "a", "package.json")); err != nil {
		t.Fatalf("a not installed: %v", err)
	}
	// Once per dir: a second call (the same dir, spelt otherwise) does not
	// look again.
	if err := os.RemoveAll(filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	if err := Install(dir + "/."); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); !os.IsNotExist(err) {
		t.Fatalf("second Install ran npm ci again (stat node_modules: %v)", err)
	}
}

// TestInstallFails: a failed `npm ci` is an error naming the directory,
// why it ran and what to run by hand, with npm's output.
func TestInstallFails(t *testing.T) {
	testenv.Slow(t, "runs npm/Node.js")
	dir := localPackage(t)
	// package.json no longer matches package-lock.json: npm ci refuses.
	writeFile(t, dir, "package.json", `{"name": "p", "version": "0.0.0", "dependencies": {"a": "file:./a", "b": "1.0.0"}}`)
	err := Install(dir)
	if err == nil {
		t.Fatal("Install succeeded")
	}
	for _, want := range []string{"npm: node_modules is not installed, and `npm ci` in " + dir + " failed (run it there by hand to see why)", "package-lock.json"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}
}
