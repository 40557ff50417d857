package repo

import (
	"encoding/json"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
)

type createRecordInput struct {
	Repo       string          `json:"repo"`
	Collection string          `json:"collection"`
	RKey       *string         `json:"rkey"`
	Validate   *bool           `json:"validate"`
	Record     json.RawMessage `json:"record"`
	SwapCommit *string         `json:"swapCommit"`
}

type writeOutput struct {
	URI              string      `json:"uri"`
	CID              string      `json:"cid"`
	Commit           *commitMeta `json:"commit,omitempty"`
	ValidationStatus string      `json:"validationStatus,omitempty"`
}

// CreateRecord serves com.atproto.repo.createRecord.
func (h *Handlers) CreateRecord(c echo.Context) error {
	var in createRecordInput
	if err := xrpc.BindJSON(c, MaxRecordBody, &in); err != nil {
		return err
	}
	did, err := h.writableRepo(c, in.Repo)
	if err != nil {
		return err
	}
	coll, err := xrpc.ParseNSID("collection", in.Collection)
	if err != nil {
		return err
	}
	rkey := syntax.RecordKey(rkeyClock.Next().String())
	if in.RKey != nil {
		if rkey, err = xrpc.ParseRecordKey("rkey", *in.RKey); err != nil {
			return err
		}
	}
	rec, err := parseRecord(in.Record)
	if err != nil {
		return err
	}
	swap, err := xrpc.OptionalCID("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	res, err := h.apply(c, did,
		[]commit.Write{{Action: eventlog.ActionCreate, Collection: coll, RKey: rkey, Record: rec, Validate: validationMode(in.Validate)}}, swap)
	if err != nil {
		return err
	}
	w := res.Writes[0]
	return c.JSON(http.StatusOK, writeOutput{URI: w.URI.String(), CID: w.CID.String(), Commit: metaOf(res), ValidationStatus: w.ValidationStatus})
}
