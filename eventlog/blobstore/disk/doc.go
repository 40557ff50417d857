// Package disk is the blobstore.Store on a local filesystem.
//
// Layout under the store's directory:
//
//	<dir>/<hh>/<account>/<cid>   a blob (file mode 0600, directories 0700)
//	<dir>/tmp/                   temp files of Puts in flight (Options.TempDir)
//
// <account> is the DID encoded as one safe, reversible file name
// (EncodeDID: "did:plc:abc" becomes "did_plc_abc"), and <hh> is the first
// byte of its SHA-256 in hex, so a server with a million accounts has 256
// directories of about 4,000 each rather than one of a million. An
// account's blobs sit flat in its directory: os.ReadDir returns them in
// name order, which is what List pages through.
//
// A Put streams into a temp file in the temp directory, syncs it, renames
// it into place and syncs the directory, so a blob is either absent or
// complete, also across a crash. The temp directory must be on the same
// filesystem (Open checks). Temp files left by a crash are removed by Open.
package disk
