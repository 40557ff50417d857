// Package npm installs and runs the Node.js packages that test harnesses
// under api/apitest drive (plcserver's @did-plc/server, jsclient's
// @atproto/api): it owns finding node and npm ([Tool]), locating a harness's
// package directory ([PackageDir]), and installing the package's
// node_modules with `npm ci` when they do not match package-lock.json
// ([Install]), under a file lock so that test binaries of several packages
// running at once install once.
//
// It never skips: a missing node or npm, or a failed install, is an error
// the caller fails its test with.
//
// Environment:
//
//	PDSLOG_NODE  the node binary (default: node on PATH)
//	PDSLOG_NPM   the npm binary (default: npm on PATH)
package npm
