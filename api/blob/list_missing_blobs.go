package blob

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/blobs"
)

type missingBlob struct {
	CID       string `json:"cid"`
	RecordURI string `json:"recordUri"`
}

// ListMissingBlobs serves com.atproto.repo.listMissingBlobs: blobs the
// caller's records reference that this server does not hold (after an
// account migration, before the blobs are uploaded).
func (h *Handlers) ListMissingBlobs(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	limit, err := xrpc.Limit(c, 500, 1000)
	if err != nil {
		return err
	}
	bs, err := h.PDS.Blobs.List(c.Request().Context(), caller.DID, c.QueryParam("cursor"), limit, func(b *blobs.Blob) bool { return !b.Uploaded })
	if err != nil {
		return err
	}
	out := map[string]any{}
	list := make([]missingBlob, len(bs))
	for i, b := range bs {
		list[i] = missingBlob{CID: b.CID, RecordURI: "at://" + caller.DID.String() + "/" + b.FirstRef}
	}
	out["blobs"] = list
	if len(bs) == limit {
		out["cursor"] = bs[len(bs)-1].CID
	}
	return c.JSON(http.StatusOK, out)
}
