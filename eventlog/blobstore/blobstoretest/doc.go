// Package blobstoretest is the conformance suite every blobstore.Store
// backend runs from its own tests (Run), plus what backend tests share: a
// memory bound check for large blobs (BoundedMemory), benchmarks (BenchPut,
// BenchOpen), and readers that generate, fail or refuse to seek.
package blobstoretest
