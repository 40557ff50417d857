// Package backup ships the event log off the machine, continuously, and
// restores it — whole, or as it stood at any seq or moment.
//
// It lives under eventlog because it needs nothing but the log: it ships
// the log's stored values as they are (secrets stay sealed) and puts them
// back through eventlog.Importer; which blobs an event uploads it reads
// from the catalogue of private events (eventlog/events), so nothing here
// imports projections or api. Objects go through the narrow
// objstore.Store (S3-compatible buckets, or a directory), whose backends
// pass one conformance suite.
//
// Layout under the backup URL's prefix (see layout.go): manifests/GEN.json,
// segments/GEN/FIRST-LAST-VER.seg, keys/GEN.age, blobs/DID/CID. A
// generation is one unbroken history of one log; a new or restored data
// dir starts a new one, so histories that diverge never mix.
//
// Invariants:
//
//   - Only durable events are shipped, in seq order, as immutable,
//     checksummed, zstd-compressed segments of dense seq ranges. A segment
//     is cut at SegmentBytes or RPO/2 after its first event was appended;
//     up to Uploads segments upload at once, and the shipped head moves
//     only over a contiguous prefix.
//   - The remote says how far it got: on start the shipper lists its
//     generation's segments, takes the contiguous prefix from seq 1 as
//     shipped and deletes anything else (an upload that completed after
//     an earlier one failed), so a crash at any point leaves no hole and
//     no duplicate once shipping resumes. Every request is retried with
//     backoff; an object appears whole or not at all.
//   - A segment's blobs are in the backup before the segment is: a
//     restored blob event always has its bytes (unless the blob was
//     already deleted on the server before it could be shipped).
//   - Manifest.Reserved stays ahead of the log's head (by SeqReserve): a
//     restore sets the seq floor to at least it and the last shipped seq,
//     so seqs that relays may have seen are never handed out again.
//   - Keys are shipped only age-encrypted (passphrase or recipients).
//   - Account deletions are recorded as purges and applied to every
//     generation by Compact (every CompactEvery while Run runs): segments
//     holding the account's earlier events are rewritten with tombstones
//     under a new version, and its blobs deleted from the backup.
//   - Restore streams: memory is bounded by the prefetch window of
//     segments, never by the log's size.
package backup
