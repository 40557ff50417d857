// Package pds is the PDS without HTTP: it opens a data directory and owns
// the event log, the projections, one lock per account, the repo signing
// keys, and every write path — record writes, account creation, status and
// deletion, handle changes, sessions' state changes, app passwords, blobs,
// preferences and invites. The XRPC handlers parse a request, call one
// method here and render its answer; the CLI (invites, replay, imports)
// calls the same methods.
//
// # Invariants
//
//   - Every write goes through [PDS.commit]: append to the log (durable
//     when it returns), then catch the projections up to the appended seq,
//     so a caller's next read sees its write (read-your-writes). Nothing
//     else in the program appends to the log.
//   - Every change to one account (a commit, a blob upload or deletion, a
//     status change, a session rotation, a handle change) runs under that
//     account's one lock ([PDS.Lock]); a commit is built on the head read
//     under the lock, and the log's head compare-and-swap backs it up.
//   - Handles, emails and invite uses that signups and handle changes have
//     checked but not yet appended are held as claims, so two concurrent
//     requests cannot both take the last one.
//   - Every password hash or check (scrypt: 16 MiB, tens of milliseconds)
//     runs through the server-wide gate [PDS.Hashing], at most one per
//     core at once; callers beyond it queue, then get ErrPasswordBusy.
//   - A taken-down account changes nothing ([CheckChange]); its sessions
//     are revoked in the takedown's own append.
//   - Errors are this package's sentinels (and commit's, auth's and the
//     log's), wrapped with detail; the HTTP layer maps them to XRPC names in
//     one place (api/xrpc). Nothing here knows about HTTP.
//
// # Where it lives
//
// The design card fixes the top level (cmd, eventlog, projections, api,
// mst, migrations). The write side must sit above the projections (it reads
// them to decide, and builds commits, which no projection may import) and
// below the HTTP handlers, so it lives under api/, as the service the API
// offers without its HTTP binding. Its sub-packages are the repo write
// model (commit), lexicon validation (lexicon) and identity (identity/plc).
// api/arch_test.go enforces that nothing here imports an HTTP package.
package pds
