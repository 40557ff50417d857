package worker_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pdslog/pdslog/projections/testenv"
	"github.com/pdslog/pdslog/projections/testenv/npm"
)

// TestTypeScript type-checks the Worker (tsc --noEmit, strict, against
// the pinned @cloudflare/workers-types) as `npm run check` does.
func TestTypeScript(t *testing.T) {
	testenv.Slow(t, "runs npm/Node.js")
	dir := pkgDir(t)
	if err := npm.Install(dir); err != nil {
		t.Fatal(err)
	}
	node, err := npm.Tool("PDSLOG_NODE", "node")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join("node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc: %v\n%s", err, out)
	}
}
