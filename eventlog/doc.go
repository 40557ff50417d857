// Package eventlog is pdslog's source of truth: an append-only log of events
// kept in its own Pebble directory.
//
// Invariants the package owns:
//
//   - Sequence numbers are assigned by the log, dense from 1, and never reused
//     or moved backwards: seqs are handed out by a single committer goroutine in
//     the same order the batches reach Pebble's write-ahead log, so a crash
//     loses at most a suffix of unacknowledged events and never leaves a gap.
//   - Append returns only once its events are durable (WAL synced). Concurrent
//     appends share fsyncs: the committer packs every queued request into one
//     Pebble batch and pipelines the next batch while the previous one syncs.
//   - Readers see only durable events. Pebble makes a batch visible to its
//     iterators before the WAL sync completes, so the log publishes a
//     "durable through seq N" watermark after each sync and Iter/Wait never go
//     past it.
//   - Each repo has a head (rev, commit CID, MST root, seq). A commit event
//     must name the current head's rev as its `since`, and its rev must be
//     greater, checked inside the committer: of two writers racing on one repo
//     exactly one wins, the other gets ErrRevConflict.
//   - Events are stored as one format byte followed by DAG-CBOR (format 1).
//     Formats never change in place; golden files in testdata pin each one.
//   - Purge replaces an account's payloads with tombstones (format byte 0)
//     while their seqs stay. Readers get tombstones as KindTombstone events so
//     cursors stay contiguous; the firehose skips them.
//   - Private payloads marked Secret are sealed at rest with AES-256-GCM under
//     a server key kept beside the log (0600) and opened on read.
//
// Key layout (one byte prefix, big-endian seqs):
//
//	'e' seq            -> event value (format byte + body)
//	'r' did 0x00 seq   -> empty; the per-repo index that makes Purge cheap
//	'h' did            -> repo head
package eventlog
