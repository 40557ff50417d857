// Package bench is the load generator behind 'pdslog bench'. It drives a
// running PDS (pdslog serve, or any other) from the outside, the way its
// clients and relays do: real XRPC calls over HTTP (createAccount,
// createRecord, applyWrites, getRecord, listRecords, uploadBlob, getRepo,
// …) from concurrent clients, and real com.atproto.sync.subscribeRepos
// websockets for the firehose subscribers. It reports ops/s and latency
// percentiles per operation, errors by XRPC error name, whether every
// subscriber saw every acknowledged commit and how far behind it ran, and,
// given the server's pid, its RSS and CPU from Linux /proc.
//
// It links none of the server: everything it measures crossed a socket, so
// its figures are what a client would see. It lives under
// cmd/pdslog/internal because it is part of the pdslog command and of no
// other program. Out of package main it is an engine with one entry point
// (Run, given a checked Config) that the command's flag adapter
// (cmd/pdslog/bench.go) calls; internal keeps that API free to change with
// the command, and keeps the generator's weight (websockets, /proc
// sampling, account state files) out of the server's packages.
//
// Files by concern:
//
//	config.go    Config, the mixes and operations
//	run.go       Run: setup, then a timed load or a single pass
//	xrpc.go      the HTTP client and one XRPC call
//	accounts.go  the accounts: state file, sessions, invites, seeding
//	load.go      the load loop: each client's calls, blob pacing
//	stats.go     latency samples and percentiles per operation
//	report.go    the report, as JSON or a table
//	proc.go      the server's and this process's RSS and CPU
//	firehose.go  the firehose subscribers
//	frame.go     the subscribeRepos frame scanner
//	records.go   filling accounts with records, listing and getRepo
//	pass.go      the readall and getrepo passes
//	progress.go  progress lines on stderr
package bench
