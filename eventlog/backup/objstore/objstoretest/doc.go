// Package objstoretest is the conformance suite every objstore backend
// runs (Run), and FakeS3: gofakes3, an S3 implementation, serving on a real
// loopback listener, with switches to take it down or hold requests, for
// the tests of the backup and of the commands that ship to it.
package objstoretest
