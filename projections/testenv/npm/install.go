package npm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// installTimeout bounds `npm ci`.
const installTimeout = 5 * time.Minute

var (
	installsMu sync.Mutex
	installs   = map[string]func() error{}
)

// Install makes dir's node_modules hold exactly what dir/package-lock.json
// pins, running `npm ci` in dir if it does not. The check and the install
// happen under a file lock (dir/.npm-ci.lock), so test binaries of several
// packages running at once install once; within a process, Install runs
// once per dir and later calls return the first call's error.
func Install(dir string) error {
	dir = filepath.Clean(dir)
	installsMu.Lock()
	once, ok := installs[dir]
	if !ok {
		once = sync.OnceValue(func() error { return install(dir) })
		installs[dir] = once
	}
	installsMu.Unlock()
	return once()
}

func install(dir string) error {
	unlock, err := lockFile(filepath.Join(dir, ".npm-ci.lock"))
	if err != nil {
		return fmt.Errorf("npm: locking %s: %w", dir, err)
	}
	defer unlock()
	why, err := needsInstall(dir)
	if err != nil || why == "" {
		return err
	}
	npm, err := Tool("PDSLOG_NPM", "npm")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	// --loglevel=error: @atproto/api 0.21.0 declares node >= 22 and npm
	// warns (EBADENGINE) on Node 20, where jsclient's script runs without
	// fault.
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm: %s, and `npm ci` in %s failed (run it there by hand to see why): %v\n%s", why, dir, err, out)
	}
	if why, err := needsInstall(dir); err != nil || why != "" {
		return fmt.Errorf("npm: after `npm ci` in %s: %s %v", dir, why, err)
	}
	return nil
}

// needsInstall says why node_modules must be (re)installed, or "" if it
// matches package-lock.json: every locked package is installed at its
// locked version, per npm's own record (node_modules/.package-lock.json).
// The error is for a missing or unreadable package-lock.json.
func needsInstall(dir string) (string, error) {
	want, err := lockedVersions(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", fmt.Errorf("npm: %w", err)
	}
	have, err := lockedVersions(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "node_modules is not installed", nil
	}
	if err != nil {
		return "node_modules is unreadable (" + err.Error() + ")", nil
	}
	for path, v := range want {
		if _, ok := have[path]; !ok && v.optional {
			continue // an optional dependency npm skipped (another platform's binary)
		}
		if have[path].version != v.version {
			return fmt.Sprintf("node_modules differs from package-lock.json (%s: have %q, want %q)", path, have[path].version, v.version), nil
		}
	}
	return "", nil
}

// locked is a package as a lock file records it.
type locked struct {
	version  string
	optional bool // installed only where its os/cpu match
}

// lockedVersions is each package under node_modules/ that the lock file
// (package-lock.json or node_modules/.package-lock.json) records, by path.
func lockedVersions(file string) (map[string]locked, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var lock struct {
		Packages map[string]struct {
			Version  string `json:"version"`
			Optional bool   `json:"optional"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	out := map[string]locked{}
	for path, p := range lock.Packages {
		if strings.HasPrefix(path, "node_modules/") {
			out[path] = locked{version: p.Version, optional: p.Optional}
		}
	}
	return out, nil
}
