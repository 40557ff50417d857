package repo

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/records"
)

type deleteRecordInput struct {
	Repo       string  `json:"repo"`
	Collection string  `json:"collection"`
	RKey       string  `json:"rkey"`
	SwapRecord *string `json:"swapRecord"`
	SwapCommit *string `json:"swapCommit"`
}

type deleteRecordOutput struct {
	Commit *commitMeta `json:"commit,omitempty"`
}

// DeleteRecord serves com.atproto.repo.deleteRecord. Deleting a record that
// does not exist succeeds without a commit, as the reference does.
func (h *Handlers) DeleteRecord(c echo.Context) error {
	var in deleteRecordInput
	if err := xrpc.BindJSON(c, maxJSONBody, &in); err != nil {
		return err
	}
	did, coll, rkey, err := h.writeTarget(c, in.Repo, in.Collection, in.RKey)
	if err != nil {
		return err
	}
	swapRecord, err := xrpc.OptionalCID("swapRecord", in.SwapRecord)
	if err != nil {
		return err
	}
	swapCommit, err := xrpc.OptionalCID("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	res, err := h.apply(c, did, []commit.Write{{Action: eventlog.ActionDelete, Collection: coll, RKey: rkey, SwapRecord: swapRecord}}, swapCommit)
	if errors.Is(err, commit.ErrRecordNotFound) && swapRecord == nil {
		if _, gerr := h.PDS.Records.Get(ctx, did, coll, rkey); errors.Is(gerr, records.ErrNotFound) {
			return c.JSON(http.StatusOK, deleteRecordOutput{})
		}
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deleteRecordOutput{Commit: metaOf(res)})
}
