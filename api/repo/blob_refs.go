package repo

import (
	"context"
	"errors"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/blobs"
)

// checkBlobRefs refuses writes whose records reference a blob the account
// has not uploaded (or the collector deleted), or reference it with a mime
// type or size other than the stored blob's, as the reference PDS does. It
// runs under the account's write lock, which the collector also takes
// before deleting a blob, so a blob checked here cannot vanish before the
// commit lands.
func (w *Writer) checkBlobRefs(ctx context.Context, did syntax.DID, writes []commit.Write) error {
	if w.Blobs == nil {
		return nil
	}
	var refs []blobs.Ref
	for _, wr := range writes {
		if wr.Record != nil {
			refs = append(refs, blobs.RefsOf(wr.Record)...)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	// Uploads append under this lock and wait for the index; catching up
	// to the head covers any upload that finished before we took it.
	if err := w.Runner.CatchUp(ctx, w.Log.Head()); err != nil {
		return err
	}
	bad := func(name, format string, args ...any) error {
		e := xrpc.InvalidRequest(format, args...)
		e.Name = name
		return e
	}
	for _, r := range refs {
		c, err := cid.Decode(r.CID)
		if err != nil || c.Version() != 1 || c.Type() != cid.Raw {
			return bad("InvalidRequest", "Invalid blob ref %s: blobs are CIDv1 with the raw codec", r.CID)
		}
		b, err := w.Blobs.Get(ctx, did, c)
		if errors.Is(err, blobs.ErrNotFound) || (err == nil && !b.Uploaded) {
			return bad("BlobNotFound", "Could not find blob: %s", r.CID)
		}
		if err != nil {
			return err
		}
		if r.MimeType != b.MimeType {
			return bad("InvalidMimeType", "Referenced Mimetype does not match stored blob. Expected: %s, Got: %s", b.MimeType, r.MimeType)
		}
		if r.Size >= 0 && r.Size != b.Size {
			return bad("InvalidRequest", "Referenced size does not match stored blob %s. Expected: %d, Got: %d", r.CID, b.Size, r.Size)
		}
	}
	return nil
}

// Lock takes did's write lock: writes, blob uploads and the blob collector
// of one account serialise on it. Call the returned func to release it.
func (w *Writer) Lock(did syntax.DID) (unlock func()) { return w.lock(did) }
