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

const (
	typeCreate       = "com.atproto.repo.applyWrites#create"
	typeUpdate       = "com.atproto.repo.applyWrites#update"
	typeDelete       = "com.atproto.repo.applyWrites#delete"
	typeCreateResult = "com.atproto.repo.applyWrites#createResult"
	typeUpdateResult = "com.atproto.repo.applyWrites#updateResult"
	typeDeleteResult = "com.atproto.repo.applyWrites#deleteResult"
)

type applyWritesInput struct {
	Repo       string       `json:"repo"`
	Validate   *bool        `json:"validate"`
	Writes     []writeInput `json:"writes"`
	SwapCommit *string      `json:"swapCommit"`
}

type writeInput struct {
	Type       string          `json:"$type"`
	Collection string          `json:"collection"`
	RKey       *string         `json:"rkey"`
	Value      json.RawMessage `json:"value"`
}

type writeResultOutput struct {
	Type             string `json:"$type"`
	URI              string `json:"uri,omitempty"`
	CID              string `json:"cid,omitempty"`
	ValidationStatus string `json:"validationStatus,omitempty"`
}

type applyWritesOutput struct {
	Commit  *commitMeta         `json:"commit"`
	Results []writeResultOutput `json:"results"`
}

// validationMode maps the `validate` input to the builder's mode.
func validationMode(v *bool) commit.ValidationMode {
	switch {
	case v == nil:
		return commit.ValidateDefault
	case *v:
		return commit.ValidateRequire
	default:
		return commit.ValidateSkip
	}
}

// ApplyWrites serves com.atproto.repo.applyWrites: up to 200 writes in one
// commit, all or nothing.
func (h *Handlers) ApplyWrites(c echo.Context) error {
	var in applyWritesInput
	if err := xrpc.BindJSON(c, MaxRecordBody, &in); err != nil {
		return err
	}
	did, err := h.writableRepo(c, in.Repo)
	if err != nil {
		return err
	}
	if len(in.Writes) > commit.MaxOps {
		return xrpc.InvalidRequest("Too many writes. Max: %d", commit.MaxOps)
	}
	mode := validationMode(in.Validate)
	writes := make([]commit.Write, len(in.Writes))
	for i, wi := range in.Writes {
		coll, err := xrpc.ParseNSID("collection", wi.Collection)
		if err != nil {
			return err
		}
		w := commit.Write{Collection: coll, Validate: mode}
		switch wi.Type {
		case typeCreate:
			w.Action = eventlog.ActionCreate
			w.RKey = syntax.RecordKey(rkeyClock.Next().String())
		case typeUpdate:
			w.Action = eventlog.ActionUpdate
		case typeDelete:
			w.Action = eventlog.ActionDelete
		default:
			return xrpc.InvalidRequest("writes[%d]: unknown $type %q", i, wi.Type)
		}
		if wi.RKey != nil {
			if w.RKey, err = xrpc.ParseRecordKey("rkey", *wi.RKey); err != nil {
				return err
			}
		} else if w.Action != eventlog.ActionCreate {
			return xrpc.InvalidRequest("writes[%d]: rkey is required for %s", i, wi.Type)
		}
		if w.Action != eventlog.ActionDelete {
			if w.Record, err = parseRecord(wi.Value); err != nil {
				return err
			}
		}
		writes[i] = w
	}
	swap, err := xrpc.OptionalCID("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	res, err := h.apply(c, did, writes, swap)
	if err != nil {
		return err
	}
	out := applyWritesOutput{Commit: metaOf(res), Results: make([]writeResultOutput, len(writes))}
	for i, w := range writes {
		r := res.Writes[i]
		switch w.Action {
		case eventlog.ActionCreate:
			out.Results[i] = writeResultOutput{Type: typeCreateResult, URI: r.URI.String(), CID: r.CID.String(), ValidationStatus: r.ValidationStatus}
		case eventlog.ActionUpdate:
			out.Results[i] = writeResultOutput{Type: typeUpdateResult, URI: r.URI.String(), CID: r.CID.String(), ValidationStatus: r.ValidationStatus}
		default:
			out.Results[i] = writeResultOutput{Type: typeDeleteResult}
		}
	}
	return c.JSON(http.StatusOK, out)
}
