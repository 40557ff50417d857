package api_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/pdslog/pdslog/"

// rank is a package's layer: dependencies flow one way, from lower ranks
// to higher ones (mst → eventlog → projections → api → cmd), and within
// api the write side (api/pds) and the libraries the handlers share sit
// below the HTTP handlers.
func rank(pkg string) int {
	p := strings.TrimPrefix(pkg, module)
	top, _, _ := strings.Cut(p, "/")
	switch {
	case top == "mst" || top == "migrations":
		return 0
	case top == "eventlog":
		return 1
	case top == "projections":
		return 2
	case p == "api/auth" || p == "api/ratelimit" || strings.HasPrefix(p, "api/pds"):
		return 3 // the write side and credential logic: no HTTP handlers
	case p == "api/xrpc":
		return 4 // errors and params of the HTTP layer
	case top == "api":
		return 5 // the HTTP handlers and their test harnesses
	case top == "cmd":
		return 6
	}
	return -1
}

type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func goList(t *testing.T) []listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"...")
	cmd.Dir = ".."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []listed
	dec := json.NewDecoder(out)
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestLayering enforces the design card's direction with go list: no
// package imports one of a higher rank (so the log imports no projection,
// projections import nothing that builds commits, and the write side
// imports no HTTP handler); api/pds imports no HTTP framework; and nothing
// outside cmd imports cmd, even in tests.
func TestLayering(t *testing.T) {
	pkgs := goList(t)
	if len(pkgs) < 40 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		r := rank(p.ImportPath)
		if r < 0 {
			t.Errorf("%s is outside the design card's top level", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(p.ImportPath, module+"api/pds") &&
				(strings.HasPrefix(imp, "github.com/labstack/echo") || imp == module+"api/xrpc") {
				t.Errorf("%s (the write side) imports the HTTP layer: %s", p.ImportPath, imp)
			}
			if !strings.HasPrefix(imp, module) {
				continue
			}
			if ri := rank(imp); ri > r {
				t.Errorf("%s (rank %d) imports %s (rank %d)", p.ImportPath, r, imp, ri)
			}
		}
		if rank(p.ImportPath) < rank(module+"cmd/pdslog") {
			for _, imp := range append(p.TestImports, p.XTestImports...) {
				if strings.HasPrefix(imp, module+"cmd/") {
					t.Errorf("tests of %s import %s", p.ImportPath, imp)
				}
			}
		}
	}
}

// TestRankKnowsEveryTopLevel: the ranks above fail closed for a new
// top-level directory.
func TestRankKnowsEveryTopLevel(t *testing.T) {
	if rank(module+"util/x") != -1 || rank(module+"api/pds/commit") != 3 || rank(module+"api/repo") != 5 {
		t.Fatal("rank is wrong")
	}
}
