// Package worker holds pdslog's read replica at the edge: a Cloudflare
// Worker (TypeScript, src/, deployed with wrangler: see README.md) that
// answers the public read XRPC methods from the D1 rows and R2 objects
// that package mirror writes, exactly as pdslog answers them, and forwards
// everything else to the origin pdslog.
//
// The Go code here is its tests: the Worker runs under Miniflare (real
// workerd, D1's SQLite, R2 storage) beside a real `pdslog serve` that
// mirrors into the same database and bucket, and every read is asked of
// both (edge_test.go); a benchmark compares their throughput
// (bench_test.go).
package worker
