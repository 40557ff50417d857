// Package s3 is the blobstore.Store in an S3-compatible bucket: AWS S3,
// Cloudflare R2, MinIO. A blob is the object blocks/<did>/<cid>, as the
// reference PDS names it; Options.KeyPrefix replaces "blocks/" (the
// Cloudflare mirror keeps blobs under blobs/).
//
// The client is built only from Options (bucket, region, endpoint,
// credentials): nothing is read from AWS_* environment variables or
// ~/.aws. Request checksums and response checksum validation are "when
// required", so PutObject and UploadPart carry no x-amz-checksum-* headers
// and no aws-chunked bodies, which R2 and other S3 clones have rejected.
//
// A Put first asks whether the blob is there (HeadObject) and does nothing
// if so. Otherwise a blob of up to Options.PartSize bytes is one PutObject
// and a larger one a multipart upload of PartSize parts, aborted on any
// failure; either way the object appears only complete. A source that is
// an io.ReaderAt and io.Seeker (the upload's temp file) is sent in
// sections of itself; any other reader is buffered one part at a time, so
// a Put holds at most one part in memory. Reads stream the object body.
package s3
