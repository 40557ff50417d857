//go:build !race

package worker_test

// raceEnabled: this test binary has the race detector; the pdslog binary
// it builds does too.
const raceEnabled = false
