package repo

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/records"
)

type getRecordOutput struct {
	URI   string         `json:"uri"`
	CID   string         `json:"cid"`
	Value map[string]any `json:"value"`
}

// GetRecord serves com.atproto.repo.getRecord; a repo that is not active
// only to its owner and the admin (RecordNotFound to others).
func (h *Handlers) GetRecord(c echo.Context) error {
	ctx := c.Request().Context()
	raw, err := xrpc.Query(c, "repo")
	if err != nil {
		return err
	}
	collRaw, err := xrpc.Query(c, "collection")
	if err != nil {
		return err
	}
	rkeyRaw, err := xrpc.Query(c, "rkey")
	if err != nil {
		return err
	}
	coll, rkey, err := recordRef(collRaw, rkeyRaw)
	if err != nil {
		return err
	}
	var wantCID string
	if v := c.QueryParam("cid"); v != "" {
		cc, err := xrpc.ParseCID("cid", v)
		if err != nil {
			return err
		}
		wantCID = cc.String()
	}
	a, hosted, err := h.lookupRepo(ctx, raw)
	if err != nil {
		return err
	}
	if !hosted {
		return h.recordElsewhere(c)
	}
	notFound := &xrpc.Error{Status: http.StatusBadRequest, Name: "RecordNotFound",
		Message: "Could not locate record: at://" + a.DID.String() + "/" + coll.String() + "/" + rkey.String()}
	// A repo that is not active has no records to anyone but its owner and
	// the admin (the reference does not find its account, and the AppView
	// it falls back to answers RecordNotFound).
	if ok, err := h.mayRead(c, a); err != nil {
		return err
	} else if !ok {
		return notFound
	}
	rec, err := h.PDS.Records.Served(ctx, a.DID, coll, rkey)
	if errors.Is(err, records.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	if wantCID != "" && rec.CID.String() != wantCID {
		return notFound
	}
	val, err := recordValue(rec.Data)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, getRecordOutput{
		URI: "at://" + a.DID.String() + "/" + coll.String() + "/" + rkey.String(), CID: rec.CID.String(), Value: val})
}
