package sync

import (
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/xrpc"
)

// GetRepo serves com.atproto.sync.getRepo: the repo at its current commit
// as a CAR v1 streamed from the MST walk (the commit block first, then each
// node followed by its records), or with since only the blocks written after
// that rev (see the package doc). The CAR's one root is the commit.
func (h *Handlers) GetRepo(c echo.Context) error {
	did, err := didParam(c)
	if err != nil {
		return err
	}
	var since syntax.TID
	if raw := c.QueryParam("since"); raw != "" {
		if since, err = xrpc.ParseTID("since", raw); err != nil {
			return err
		}
	}
	head, err := h.available(c, did)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	src := h.PDS.Blocks.Source(did)
	if since == "" {
		startCAR(c)
		return h.streamFailed(c, did, commit.ExportCAR(ctx, c.Response(), src, head.Commit, head.Data))
	}
	added, full, err := h.writtenSince(ctx, did, head, since)
	if err != nil {
		return err
	}
	startCAR(c)
	if full {
		return h.streamFailed(c, did, commit.ExportCAR(ctx, c.Response(), src, head.Commit, head.Data))
	}
	return h.streamFailed(c, did, exportAdded(ctx, c.Response(), src, head, added))
}
