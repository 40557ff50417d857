package npm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Tool is the path of the program name: $env if set (not checked), else
// name looked up on PATH. The error says which variable to set and that
// Node.js (>= 20) and npm are needed.
func Tool(env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("npm: %s not found on PATH (set %s): the tests that run npm packages need Node.js (>= 20) and npm: install them: %w", name, env, err)
	}
	return p, nil
}

// PackageDir is a harness's package directory, holding marker (the script
// it runs), package.json and node_modules: $env if set (not checked), else
// the directory of the Go source file that calls PackageDir, which must
// hold marker (it does not when the test binary was built with -trimpath
// or elsewhere than its source tree: then set env).
func PackageDir(env, marker string) (string, error) {
	if d := os.Getenv(env); d != "" {
		return d, nil
	}
	_, file, _, ok := runtime.Caller(1)
	if !ok {
		return "", fmt.Errorf("npm: cannot locate the directory of %s; set %s", marker, env)
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		return "", fmt.Errorf("npm: no %s in %s (built with -trimpath?); set %s: %w", marker, dir, env, err)
	}
	return dir, nil
}
