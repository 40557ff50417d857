// Package blobs is the blob index: every account's blobs, their metadata
// and how many current records reference them, derived from the log. The
// bytes live in a blobstore; the facts live here, rebuilt by replay:
//
//   - a private blob.uploaded event (the upload finished and the bytes are
//     stored under the account),
//   - #commit events: each created, updated or deleted record adds and
//     drops references to the blobs its DAG-CBOR holds,
//   - a private blob.deleted event (the collector removed an unreferenced
//     blob after its grace period),
//   - a private blob.quarantine event (an admin took the blob down: its
//     bytes are kept, not served),
//   - #account deleted (the account's blobs go with it).
//
// A blob with no references is a collection candidate from the time it
// lost its last reference (or was uploaded), kept in a time-ordered index
// the collector scans. A reference to a blob the account never uploaded is
// kept as a missing blob (listMissingBlobs), as after a repo import.
package blobs
