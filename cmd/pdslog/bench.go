package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/pdslog/pdslog/cmd/pdslog/internal/bench"
)

// benchCommand is 'pdslog bench': its flags, checked into a bench.Config
// for bench.Run, the load generator.
type benchCommand struct {
	stdout, stderr io.Writer
	cfg            bench.Config
}

const benchSummary = `Load a running 'pdslog serve' and measure it: create (or reuse, from the
--state file) accounts, then call createRecord / applyWrites / getRecord /
listRecords / uploadBlob from --concurrency clients for --duration while
--subscribers firehose subscribers follow com.atproto.sync.subscribeRepos.
Prints ops/s and latency p50/p90/p99/max per operation, errors by XRPC error
name, firehose lag and whether every subscriber got every event, and the
server's RSS when --pid names its process.

Mixes: write (createRecord, applyWrites), read (getRecord, listRecords),
mixed (all five), health (GET /xrpc/_health, a baseline), or one operation
by name (e.g. getRecord). Two mixes are a single pass instead of a timed
load (--duration does not apply): readall reads every account once
(getRepo streamed whole and discarded, describeRepo, listRecords over every
page) and reports calls, records, bytes, time and, with --pid, the server's
RSS before, at its peak during and after the pass; getrepo streams getRepo
of each account in turn and reports, with --pid, the server's peak RSS
growth over a baseline taken right before each stream.

--records N first makes every account hold at least N records (counted
with describeRepo / listRecords, the rest created with createRecord at
--concurrency, progress on stderr); a target with rate limits on caps
this at its per-account write budget, so seed a large repo against one
started with --rate-limits=false.

Accounts are created through createAccount; a target that requires invites
needs --admin-password to mint an invite code. The target's writes count
against its per-account write budget (5000 points an hour, a create costs
3) and uploads against its per-IP budget (30 a minute): --blob-per-minute
paces uploadBlob under it.`

// Limits that keep a run bounded.
const (
	benchMaxAccounts    = 10_000
	benchMaxConcurrency = 4096
	benchMaxSubscribers = 10_000
	benchMaxDuration    = time.Hour
	benchMaxRecords     = 1_000_000
)

func (c *benchCommand) run(ctx context.Context, args []string) error {
	f := newFlags("bench", benchSummary, c.stderr)
	f.String(&c.cfg.Target, "target", "", "URL of the PDS to load, e.g. http://127.0.0.1:2583 (required)")
	f.Int(&c.cfg.Accounts, "accounts", 4, "accounts to write to")
	f.Int(&c.cfg.Concurrency, "concurrency", 4, "concurrent clients; client i writes to account i mod --accounts")
	f.Duration(&c.cfg.Duration, "duration", 10*time.Second, "how long to apply the load")
	f.String(&c.cfg.Mix, "mix", "mixed", "operations: write, read, mixed, health, or one operation name; or a single pass: readall, getrepo")
	f.Int(&c.cfg.Subscribers, "subscribers", 0, "firehose subscribers following during the load")
	f.Bool(&c.cfg.JSON, "json", false, "print one JSON document instead of the table")
	f.String(&c.cfg.State, "state", "pdslog-bench.json", "file that keeps the accounts created, reused on the next run against the same target")
	f.Secret(&c.cfg.AdminPassword, "admin-password", "the target's admin password, to mint an invite code when it requires one", "PDS_ADMIN_PASSWORD")
	f.Int(&c.cfg.PID, "pid", 0, "process id of the target, to report its RSS (Linux /proc)")
	f.Int(&c.cfg.BlobPerMinute, "blob-per-minute", 25, "most uploadBlob calls a minute (the target allows 30 per IP)")
	f.Int(&c.cfg.Records, "records", 0, "before the load, make every account hold at least this many records")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	err := bench.Run(ctx, c.cfg, c.stdout, c.stderr)
	if errors.Is(err, bench.ErrInviteRequired) {
		return usageError{err.Error() + ": give its admin password (--admin-password or PDS_ADMIN_PASSWORD)"}
	}
	return err
}

// validate checks the flags' bounds and reduces --target to scheme://host.
func (c *benchCommand) validate() error {
	cfg := &c.cfg
	if cfg.Target == "" {
		return usageError{"--target is required (the URL of a running pdslog serve)"}
	}
	u, err := url.Parse(cfg.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return usageError{fmt.Sprintf("--target %q: want http(s)://host[:port]", cfg.Target)}
	}
	cfg.Target = u.Scheme + "://" + u.Host
	switch {
	case cfg.Accounts < 1 || cfg.Accounts > benchMaxAccounts:
		return usageError{fmt.Sprintf("--accounts must be 1..%d", benchMaxAccounts)}
	case cfg.Concurrency < 1 || cfg.Concurrency > benchMaxConcurrency:
		return usageError{fmt.Sprintf("--concurrency must be 1..%d", benchMaxConcurrency)}
	case cfg.Subscribers < 0 || cfg.Subscribers > benchMaxSubscribers:
		return usageError{fmt.Sprintf("--subscribers must be 0..%d", benchMaxSubscribers)}
	case cfg.Duration <= 0 || cfg.Duration > benchMaxDuration:
		return usageError{fmt.Sprintf("--duration must be in (0, %s]", benchMaxDuration)}
	case cfg.BlobPerMinute < 0:
		return usageError{"--blob-per-minute must not be negative"}
	case cfg.Records < 0 || cfg.Records > benchMaxRecords:
		return usageError{fmt.Sprintf("--records must be 0..%d", benchMaxRecords)}
	}
	if err := bench.CheckMix(cfg.Mix); err != nil {
		return usageError{fmt.Sprintf("--mix %q: %s", cfg.Mix, err)}
	}
	return nil
}
