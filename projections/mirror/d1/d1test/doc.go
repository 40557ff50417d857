// Package d1test runs Cloudflare D1 locally for tests: Miniflare (the npm
// package, which runs Cloudflare's workerd and D1's SQLite) with a small
// worker of ours, worker.mjs, that serves D1's REST API, POST
// /client/v4/accounts/{account}/d1/database/{db}/query with a Bearer token
// and Cloudflare's response envelope, on 127.0.0.1. Miniflare has no REST
// API of its own; the worker runs each request's statements as one D1
// batch through a real D1 binding.
//
// package.json and package-lock.json pin miniflare exactly; Start installs
// node_modules from them (npm ci) when they differ, and .ci/run installs
// them up front. It needs Node.js >= 20 and npm (PDSLOG_NODE and
// PDSLOG_NPM name them when they are not on PATH; PDSLOG_D1EMU_DIR names
// this directory when the test binary was built elsewhere).
//
// Starting an emulator costs about two seconds, so a test binary shares
// one (Start in TestMain) and takes a fresh database from its pool for
// each test (Emulator.Database).
package d1test
