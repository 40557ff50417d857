// Package plcserver runs a real PLC directory for tests: the reference
// implementation, npm package @did-plc/server, with its in-memory database,
// in a node process on a random loopback port.
//
// [Start] starts one for a test and stops it at the test's cleanup. The
// npm packages are installed in this directory's node_modules; when they
// are missing or do not match package-lock.json, Start runs `npm ci` here
// first (once per machine at a time, under a file lock). It needs node and
// npm on PATH (or PDSLOG_NODE / PDSLOG_NPM); without them, or if the server
// does not come up, the test fails: it is never skipped.
//
// Environment:
//
//	PDSLOG_NODE          the node binary (default: node on PATH)
//	PDSLOG_NPM           the npm binary (default: npm on PATH)
//	PDSLOG_PLCSERVER_DIR this directory, if the source tree is not where
//	                     the test binary was built
//	PDSLOG_PLC_LOG=1     let the server log its requests (to its stdout,
//	                     shown when the test fails)
package plcserver
