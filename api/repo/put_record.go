package repo

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/records"
)

type putRecordInput struct {
	Repo       string          `json:"repo"`
	Collection string          `json:"collection"`
	RKey       string          `json:"rkey"`
	Validate   *bool           `json:"validate"`
	Record     json.RawMessage `json:"record"`
	SwapRecord *string         `json:"swapRecord"`
	SwapCommit *string         `json:"swapCommit"`
}

// PutRecord serves com.atproto.repo.putRecord: create or replace.
// A swapRecord of null means the record must not exist yet.
func (h *Handlers) PutRecord(c echo.Context) error {
	var raw map[string]json.RawMessage
	var in putRecordInput
	if err := xrpc.BindJSON(c, MaxRecordBody, &raw); err != nil {
		return err
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &in); err != nil {
		return xrpc.InvalidRequest("invalid input: %v", err)
	}
	did, coll, rkey, err := h.writeTarget(c, in.Repo, in.Collection, in.RKey)
	if err != nil {
		return err
	}
	rec, err := parseRecord(in.Record)
	if err != nil {
		return err
	}
	swapCommit, err := xrpc.OptionalCID("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	w := commit.Write{Collection: coll, RKey: rkey, Record: rec, Validate: validationMode(in.Validate)}
	if sr, present := raw["swapRecord"]; present {
		if string(sr) == "null" {
			w.SwapRecord = &undef
		} else if w.SwapRecord, err = xrpc.OptionalCID("swapRecord", in.SwapRecord); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	// Upsert: an update when the record exists, else a create. The write
	// path checks again under the repo lock, so a race gives a clear error.
	w.Action = eventlog.ActionCreate
	if _, err := h.PDS.Records.Get(ctx, did, coll, rkey); err == nil {
		w.Action = eventlog.ActionUpdate
	} else if !errors.Is(err, records.ErrNotFound) {
		return err
	}
	res, err := h.apply(c, did, []commit.Write{w}, swapCommit)
	if err != nil {
		return err
	}
	r := res.Writes[0]
	return c.JSON(http.StatusOK, writeOutput{URI: r.URI.String(), CID: r.CID.String(), Commit: metaOf(res), ValidationStatus: r.ValidationStatus})
}
