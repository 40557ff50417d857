// Package blob serves blobs: com.atproto.repo.uploadBlob (streamed to a
// temp file while hashed and sniffed, then stored under the account and
// recorded as a blob.uploaded event), com.atproto.sync.getBlob (streamed,
// with Range), com.atproto.sync.listBlobs, com.atproto.repo.listMissingBlobs,
// and the collector that deletes blobs no record has referenced for a grace
// period. Blob facts live in the log (projections/blobs); bytes live in a
// Store (eventlog/blobstore backends).
package blob
