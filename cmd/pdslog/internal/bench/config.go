package bench

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is one run's settings. The command checks their bounds before
// Run; Run itself refuses only what it could not run at all.
type Config struct {
	Target        string        // the PDS's base URL, http(s)://host[:port]
	Accounts      int           // accounts to write to
	Concurrency   int           // concurrent clients; client i uses account i mod Accounts
	Duration      time.Duration // how long a load runs (a pass ignores it)
	Mix           string        // what to call; see CheckMix
	Subscribers   int           // firehose subscribers following a load
	JSON          bool          // print the report as one JSON document instead of a table
	State         string        // file keeping the accounts created, reused against the same target
	AdminPassword string        // the target's, to mint an invite code when it requires one
	PID           int           // the target's process, to report its RSS and CPU (0: none)
	BlobPerMinute int           // most uploadBlob calls a minute
	Records       int           // before the load, make every account hold at least this many records
}

// ErrInviteRequired is returned by Run when the target requires invite
// codes and Config has no admin password to mint one.
var ErrInviteRequired = errors.New("the target requires invite codes")

// Operations, as named in the report.
const (
	opCreateRecord = "createRecord"
	opApplyWrites  = "applyWrites"
	opGetRecord    = "getRecord"
	opListRecords  = "listRecords"
	opUploadBlob   = "uploadBlob"
	opHealth       = "health"
	opGetRepo      = "getRepo"      // passes only
	opDescribeRepo = "describeRepo" // passes only
)

// loadOps are the operations a load mix may name alone.
var loadOps = []string{opCreateRecord, opApplyWrites, opGetRecord, opListRecords, opUploadBlob, opHealth}

// reportOps is the order of the report's rows.
var reportOps = append(slices.Clone(loadOps), opDescribeRepo, opGetRepo)

type weight struct {
	op     string
	weight int
}

// loadMixes are the named timed loads.
var loadMixes = map[string][]weight{
	"write":  {{opCreateRecord, 4}, {opApplyWrites, 1}},
	"read":   {{opGetRecord, 3}, {opListRecords, 1}},
	"mixed":  {{opCreateRecord, 3}, {opApplyWrites, 1}, {opGetRecord, 4}, {opListRecords, 2}, {opUploadBlob, 1}},
	"health": {{opHealth, 1}},
}

// Passes: a single pass over every account instead of a timed load.
const (
	mixReadAll = "readall"
	mixGetRepo = "getrepo"
)

func isPass(mix string) bool { return mix == mixReadAll || mix == mixGetRepo }

// CheckMix returns nil if mix is a load (write, read, mixed, health, or
// one operation by name) or a pass (readall, getrepo), and otherwise an
// error listing them.
func CheckMix(mix string) error {
	if _, ok := loadMixes[mix]; ok || slices.Contains(loadOps, mix) || isPass(mix) {
		return nil
	}
	return fmt.Errorf("want write, read, mixed, health, readall, getrepo or one of %s", strings.Join(loadOps, ", "))
}

// weights is the mix's operations and their weights.
func weights(mix string) []weight {
	switch {
	case isPass(mix):
		return []weight{{opDescribeRepo, 1}, {opGetRepo, 1}, {opListRecords, 1}}
	case loadMixes[mix] != nil:
		return loadMixes[mix]
	}
	return []weight{{mix, 1}}
}

// check refuses a Config Run cannot run.
func (c *Config) check() error {
	if err := CheckMix(c.Mix); err != nil {
		return fmt.Errorf("bench: mix %q: %w", c.Mix, err)
	}
	if c.Target == "" || c.Accounts < 1 || c.Concurrency < 1 || c.Duration <= 0 {
		return errors.New("bench: want a target, at least one account and one client, and a duration")
	}
	return nil
}
