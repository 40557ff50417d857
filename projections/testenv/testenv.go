// Package testenv sorts pdslog's tests into tiers and runs the Node.js
// harnesses they share (npm). `go test -short ./...` skips the tests that
// need Node.js (the real PLC directory, the TypeScript client, the D1
// emulator), that kill processes or mount filesystems, and the slowest
// suites; the full run (`go tool task test`, what CI runs) runs them all,
// and with PDSLOG_NO_SKIP=1 (set by .ci/run) every skip — for -short or
// for something missing on the machine — fails instead.
//
// It lives under projections because the D1 emulator harness there is the
// lowest package that needs it; mst's and eventlog's few tiered tests check
// testing.Short and NoSkipEnv themselves.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// NoSkipEnv, when set, turns skips into failures (CI).
const NoSkipEnv = "PDSLOG_NO_SKIP"

// Slow skips t under -short: it needs Node.js, kills processes, mounts
// filesystems or takes long; the full suite runs it.
func Slow(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		Skip(t, "-short: %s", why)
	}
}

// Skip skips t, or fails it when NoSkipEnv is set.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(NoSkipEnv) != "" {
		t.Fatalf("would skip, but %s is set: %s", NoSkipEnv, msg)
	}
	t.Skip(msg)
}
