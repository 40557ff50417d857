// Package objstore is where a backup's objects live: Store, the narrow
// interface the shipper and restore use (whole-object Put, Get, a ranged
// Get, ordered List, Delete), and the errors its backends share.
//
// Backends each live in their own package and pass the same conformance
// suite (objstoretest), as litestream's replica clients do:
//
//   - s3: an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO) under a key
//     prefix, one PutObject per object.
//   - dir: files under a local directory, written to a temp file, synced
//     and renamed into place (a backup on another disk, and tests).
//
// Invariants every backend keeps:
//
//   - Put is atomic: a reader sees the whole new object or none of it (or
//     the whole old one, when overwriting); a failed or cancelled Put leaves
//     nothing visible.
//   - List is in ascending byte order of keys, and sees every object whose
//     Put returned before List was called.
//   - Keys are relative, '/'-separated, without empty or dot segments;
//     callers never make a key that is a '/'-prefix of another ("a" and
//     "a/b"), which a directory cannot hold.
package objstore
