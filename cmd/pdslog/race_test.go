//go:build race

package main

// raceDetector: the tests run under the race detector (as CI runs them),
// which multiplies memory and CPU several times; bounds that measure the
// server are scaled for it.
const raceDetector = true
