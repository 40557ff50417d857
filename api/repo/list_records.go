package repo

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

type listRecordsOutput struct {
	Cursor  string            `json:"cursor,omitempty"`
	Records []getRecordOutput `json:"records"`
}

// ListRecords serves com.atproto.repo.listRecords (limit 1–100, default 50;
// cursor is the last rkey of the previous page; reverse lists oldest first
// as the reference does — rkeys ascending). A repo that is not active is
// listed only to its owner and the admin.
func (h *Handlers) ListRecords(c echo.Context) error {
	ctx := c.Request().Context()
	raw, err := xrpc.Query(c, "repo")
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
	limit, err := xrpc.Limit(c, 50, 100)
	if err != nil {
		return err
	}
	reverse, err := xrpc.Bool(c, "reverse")
	if err != nil {
		return err
	}
	cursor := c.QueryParam("cursor")
	if cursor != "" {
		if _, err := xrpc.ParseRecordKey("cursor", cursor); err != nil {
			return err
		}
	}
	a, err := h.resolveRepo(ctx, raw)
	if err != nil {
		return err
	}
	// A repo that is not active is, to anyone but its owner and the admin,
	// a repo this server does not know (the reference's getDidForActor
	// does not see inactive accounts).
	if ok, err := h.mayRead(c, a); err != nil {
		return err
	} else if !ok {
		return xrpc.InvalidRequest("Could not find repo: %s", raw)
	}
	// Newest first (descending rkey) by default; reverse=true ascending.
	recs, err := h.PDS.Records.List(ctx, a.DID, coll, cursor, limit, !reverse)
	if err != nil {
		return err
	}
	out := listRecordsOutput{Records: make([]getRecordOutput, 0, len(recs))}
	for _, r := range recs {
		val, err := recordValue(r.Data)
		if err != nil {
			return err
		}
		out.Records = append(out.Records, getRecordOutput{
			URI: "at://" + a.DID.String() + "/" + coll.String() + "/" + r.RKey.String(), CID: r.CID.String(), Value: val})
	}
	if len(recs) == limit {
		out.Cursor = recs[len(recs)-1].RKey.String()
	}
	return c.JSON(http.StatusOK, out)
}
