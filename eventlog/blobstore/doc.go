// Package blobstore defines where blob bytes live: Store, a narrow
// interface keyed by (account DID, blob CID), and the sentinel errors its
// backends share. The facts about blobs (who uploaded what, mime types,
// references, quarantine) are not here: they are events in the log and
// the projections/blobs index. A Store only keeps bytes.
//
// Blobs are stored per account, like the reference PDS (blocks/<did>/<cid>),
// so one account's blobs can be listed, exported and deleted together, and
// the same bytes uploaded twice by one account are stored once.
//
// Backends each live in their own package and run the same conformance
// suite (blobstoretest):
//
//   - disk: files under a directory, written to a temp file, synced and
//     renamed into place.
//   - s3: an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO), one
//     PutObject or a multipart upload per blob.
//
// Every method streams: no backend reads a whole blob into memory.
//
// It lives under eventlog, not projections: blob bytes are primary data
// like the log (nothing rebuilds them), and the log records which exist.
package blobstore
