// Package blob serves blobs: com.atproto.repo.uploadBlob (streamed to a
// temp file while hashed and sniffed, then stored and recorded by
// pds.PutBlob), com.atproto.sync.getBlob (streamed, with Range),
// com.atproto.sync.listBlobs and com.atproto.repo.listMissingBlobs. Blob
// facts live in the log (projections/blobs); bytes live in a store
// (eventlog/blobstore backends); the collector of unreferenced blobs is
// the write side's (api/pds).
package blob
