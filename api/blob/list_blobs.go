package blob

import (
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// ListBlobs serves com.atproto.sync.listBlobs: the CIDs of blobs current
// records reference, optionally only those of records written after the
// rev since, in CID order, paginated by CID.
func (h *Handlers) ListBlobs(c echo.Context) error {
	did, err := xrpc.ParseDID("did", c.QueryParam("did"))
	if err != nil {
		return err
	}
	var since syntax.TID
	if s := c.QueryParam("since"); s != "" {
		if since, err = xrpc.ParseTID("since", s); err != nil {
			return err
		}
	}
	limit, err := xrpc.Limit(c, 500, 1000)
	if err != nil {
		return err
	}
	if err := h.gate(c, did); err != nil {
		return err
	}
	cids, err := h.PDS.Blobs.ReferencedSince(c.Request().Context(), did, since, c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	out := map[string]any{"cids": cids}
	if len(cids) == limit {
		out["cursor"] = cids[len(cids)-1]
	}
	return c.JSON(http.StatusOK, out)
}
