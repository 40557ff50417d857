package sync

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/mst"
	"github.com/pdslog/pdslog/mst/car"
)

// parseCIDs parses the cids parameter (repeated, one CID each) into
// distinct CIDs in the order first given. At least one is required; a bad
// one is an InvalidRequest naming the parameter.
func parseCIDs(raw []string) ([]cid.Cid, error) {
	if len(raw) == 0 {
		return nil, xrpc.InvalidRequest("missing required parameter %q", "cids")
	}
	out := make([]cid.Cid, 0, len(raw))
	seen := make(map[cid.Cid]bool, len(raw))
	for _, s := range raw {
		c, err := xrpc.ParseCID("cids", s)
		if err != nil {
			return nil, err
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// GetBlocks serves com.atproto.sync.getBlocks: a CAR (no roots) of the
// named blocks of the repo, each once. If any is missing the answer is
// BlockNotFound naming the missing ones, and no CAR. Blocks are the
// repo's stored blocks, which include earlier versions of its tree.
func (h *Handlers) GetBlocks(c echo.Context) error {
	did, err := didParam(c)
	if err != nil {
		return err
	}
	cids, err := parseCIDs(c.QueryParams()["cids"])
	if err != nil {
		return err
	}
	if _, err := h.available(c, did); err != nil {
		return err
	}
	ctx := c.Request().Context()
	// Check them all before sending anything, so a missing block is an
	// error response rather than a truncated CAR.
	var missing []string
	for _, k := range cids {
		if _, err := h.PDS.Blocks.Get(ctx, did, k); errors.Is(err, mst.ErrMissingBlock) {
			missing = append(missing, k.String())
		} else if err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return &xrpc.Error{Status: http.StatusBadRequest, Name: "BlockNotFound", Message: "Could not find cids: " + strings.Join(missing, ",")}
	}
	startCAR(c)
	cw, err := car.NewWriter(c.Response())
	if err != nil {
		return err
	}
	for _, k := range cids {
		b, err := h.PDS.Blocks.Get(ctx, did, k)
		if err != nil {
			return h.streamFailed(c, did, err)
		}
		if err := cw.Put(k, b); err != nil {
			return h.streamFailed(c, did, err)
		}
	}
	return h.streamFailed(c, did, cw.Close())
}
