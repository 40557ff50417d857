// Package jsclient runs the official atproto TypeScript client, npm package
// @atproto/api (pinned in package.json / package-lock.json), against a
// running PDS, for tests that prove a real app's client library works with
// pdslog end to end.
//
// client.mjs, in this directory, signs up with an invite code, logs in,
// writes, reads, pages, batches, swaps, refreshes and ends sessions through
// the library's AtpAgent, as an app does, and checks every answer, typed
// errors included. It prints one JSON line per step and stops at the first
// failure. Whatever the library prints on the console, and any request a
// browser would block under CORS, fails the step.
//
// [Run] runs the script for a test and returns its steps. The npm packages
// are installed in this directory's node_modules; when they are missing or
// do not match package-lock.json, Run runs `npm ci` here first (once per
// machine at a time, under a file lock). It needs node and npm on PATH (or
// PDSLOG_NODE / PDSLOG_NPM); without them the test fails: it is never
// skipped.
//
// Environment:
//
//	PDSLOG_NODE          the node binary (default: node on PATH)
//	PDSLOG_NPM           the npm binary (default: npm on PATH)
//	PDSLOG_JSCLIENT_DIR  this directory, if the source tree is not where
//	                     the test binary was built
package jsclient
