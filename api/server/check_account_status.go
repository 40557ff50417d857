package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
)

// CheckAccountStatus serves com.atproto.server.checkAccountStatus.
func (h *Handlers) CheckAccountStatus(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	a, err := h.PDS.Accounts.Get(ctx, caller.DID)
	if err != nil {
		return xrpc.AuthRequired("account not found")
	}
	out := map[string]any{
		"activated": a.Active, "validDid": a.SigningKeySeq != 0,
		"repoBlocks": 0, "indexedRecords": 0, "privateStateValues": 0, "expectedBlobs": 0, "importedBlobs": 0,
	}
	head, err := h.PDS.Log.RepoHead(ctx, a.DID)
	if err != nil && !errors.Is(err, eventlog.ErrNotFound) {
		return err
	}
	if err == nil {
		out["repoCommit"], out["repoRev"] = head.Commit.String(), head.Rev.String()
	}
	n, err := h.PDS.Blocks.Count(ctx, a.DID)
	if err != nil {
		return err
	}
	out["repoBlocks"] = n
	if n, err = h.PDS.Records.Count(ctx, a.DID); err != nil {
		return err
	}
	out["indexedRecords"] = n
	expected, imported, err := h.PDS.Blobs.Counts(ctx, a.DID)
	if err != nil {
		return err
	}
	out["expectedBlobs"], out["importedBlobs"] = expected, imported
	out["validDid"] = h.PDS.DIDDocValid(ctx, a.DID)
	return c.JSON(http.StatusOK, out)
}
