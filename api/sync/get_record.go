package sync

import (
	"net/http"

	"github.com/ipfs/go-cid"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// GetRecord serves com.atproto.sync.getRecord: a CAR rooted at the
// current commit holding the signed commit block, the MST nodes on the
// record's path (mst.Proof) and the record block. For a record that does
// not exist it is the proof of its absence (the commit and the path down to
// the gap where the key would be), as the reference PDS answers, rather
// than RecordNotFound.
func (h *Handlers) GetRecord(c echo.Context) error {
	did, err := didParam(c)
	if err != nil {
		return err
	}
	collRaw, err := xrpc.Query(c, "collection")
	if err != nil {
		return err
	}
	coll, err := xrpc.ParseNSID("collection", collRaw)
	if err != nil {
		return err
	}
	rkeyRaw, err := xrpc.Query(c, "rkey")
	if err != nil {
		return err
	}
	rkey, err := xrpc.ParseRecordKey("rkey", rkeyRaw)
	if err != nil {
		return err
	}
	key := coll.String() + "/" + rkey.String()
	if err := mst.ValidateKey(key); err != nil {
		return xrpc.InvalidRequest("invalid record path %q: %v", key, err)
	}
	head, err := h.available(c, did)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	src := h.PDS.Blocks.Source(did)
	commitBlock, err := src.Get(ctx, head.Commit)
	if err != nil {
		return err
	}
	tree, err := mst.Load(ctx, src, head.Data)
	if err != nil {
		return err
	}
	proof, err := tree.Proof(ctx, key)
	if err != nil {
		return err
	}
	blocks := make([]car.Block, 0, len(proof)+2)
	blocks = append(blocks, car.Block{CID: head.Commit, Data: commitBlock})
	for _, b := range proof {
		blocks = append(blocks, car.Block{CID: b.CID, Data: b.Data})
	}
	val, ok, err := tree.Get(ctx, key)
	if err != nil {
		return err
	}
	if ok {
		rec, err := src.Get(ctx, val)
		if err != nil {
			return err
		}
		blocks = append(blocks, car.Block{CID: val, Data: rec})
	}
	out, err := car.Marshal([]cid.Cid{head.Commit}, blocks...)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, ContentTypeCAR, out)
}
