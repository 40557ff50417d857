package npm

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestTool(t *testing.T) {
	bin := t.TempDir()
	exe := filepath.Join(bin, "pdslog-npm-test-tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	t.Setenv("PDSLOG_NPM_TEST_TOOL", "")

	if got, err := Tool("PDSLOG_NPM_TEST_TOOL", "pdslog-npm-test-tool"); err != nil || got != exe {
		t.Errorf("on PATH: Tool = %q, %v; want %q", got, err, exe)
	}
	_, err := Tool("PDSLOG_NPM_TEST_TOOL", "pdslog-npm-test-missing")
	if err == nil || !strings.Contains(err.Error(), "npm: pdslog-npm-test-missing not found on PATH (set PDSLOG_NPM_TEST_TOOL)") {
		t.Errorf("missing: Tool error = %v", err)
	}
	// The variable wins, unchecked.
	t.Setenv("PDSLOG_NPM_TEST_TOOL", "/elsewhere/tool")
	if got, err := Tool("PDSLOG_NPM_TEST_TOOL", "pdslog-npm-test-missing"); err != nil || got != "/elsewhere/tool" {
		t.Errorf("from the variable: Tool = %q, %v", got, err)
	}
}

func TestPackageDir(t *testing.T) {
	t.Setenv("PDSLOG_NPM_TEST_DIR", "")
	wd, err := os.Getwd() // go test runs in the package's source directory
	if err != nil {
		t.Fatal(err)
	}
	// The caller is this file, in this package's directory.
	if got, err := PackageDir("PDSLOG_NPM_TEST_DIR", "doc.go"); err != nil || got != wd {
		t.Errorf("PackageDir = %q, %v; want %q", got, err, wd)
	}
	_, err = PackageDir("PDSLOG_NPM_TEST_DIR", "server.js")
	if err == nil || !strings.Contains(err.Error(), "npm: no server.js in "+wd) || !strings.Contains(err.Error(), "set PDSLOG_NPM_TEST_DIR") {
		t.Errorf("no marker: PackageDir error = %v", err)
	}
	t.Setenv("PDSLOG_NPM_TEST_DIR", "/elsewhere")
	if got, err := PackageDir("PDSLOG_NPM_TEST_DIR", "server.js"); err != nil || got != "/elsewhere" {
		t.Errorf("from the variable: PackageDir = %q, %v", got, err)
	}
}

func TestOutputReady(t *testing.T) {
	o := NewOutput(regexp.MustCompile(`^READY ([0-9]+)$`))
	for _, chunk := range []string{"starting\nREA", "DY 4", "2\nREADY 7\n", "tail"} {
		if _, err := o.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-o.Ready():
		if got != "42" {
			t.Fatalf("ready %q, want 42", got)
		}
	default:
		t.Fatal("no ready line reported")
	}
	select {
	case got := <-o.Ready():
		t.Fatalf("a second ready line was reported: %q", got)
	default:
	}
	if o.String() != "starting\nREADY 42\nREADY 7\ntail" {
		t.Fatalf("collected %q", o.String())
	}
}
