package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
)

// Subject types of com.atproto.admin.{get,update}SubjectStatus.
const (
	subjectRepo   = "com.atproto.admin.defs#repoRef"
	subjectBlob   = "com.atproto.admin.defs#repoBlobRef"
	subjectRecord = "com.atproto.repo.strongRef"
)

type statusAttr struct {
	Applied bool   `json:"applied"`
	Ref     string `json:"ref,omitempty"`
}

type subject struct {
	Type      string `json:"$type"`
	DID       string `json:"did,omitempty"`
	CID       string `json:"cid,omitempty"`
	RecordURI string `json:"recordUri,omitempty"`
	URI       string `json:"uri,omitempty"`
}

func accountNotFound() *xrpc.Error {
	return &xrpc.Error{Status: http.StatusBadRequest, Name: "AccountNotFound", Message: "account not found"}
}

// UpdateSubjectStatus serves com.atproto.admin.updateSubjectStatus for
// accounts (takedown: #account {active: false, status: "takendown"};
// reversal: active again) and blobs (takedown quarantines: the bytes are
// kept but not served). Record takedowns are refused as unsupported.
func (h *Handlers) UpdateSubjectStatus(c echo.Context) error {
	var in struct {
		Subject  json.RawMessage `json:"subject"`
		Takedown *statusAttr     `json:"takedown"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	var sub subject
	if err := json.Unmarshal(in.Subject, &sub); err != nil || sub.Type == "" {
		return xrpc.InvalidRequest("subject must be a typed object")
	}
	ctx := c.Request().Context()
	switch sub.Type {
	case subjectRepo, subjectBlob:
	case subjectRecord:
		return xrpc.InvalidRequest("record takedowns are not supported by this server")
	default:
		return xrpc.InvalidRequest("unknown subject type %q", sub.Type)
	}
	did, err := xrpc.ParseDID("subject.did", sub.DID)
	if err != nil {
		return err
	}
	if _, err := h.PDS.Accounts.Get(ctx, did); errors.Is(err, accounts.ErrNotFound) {
		return accountNotFound()
	} else if err != nil {
		return err
	}
	out := map[string]any{"subject": json.RawMessage(in.Subject)}
	if in.Takedown == nil {
		return c.JSON(http.StatusOK, out)
	}
	out["takedown"] = in.Takedown
	switch sub.Type {
	case subjectRepo:
		if _, err := h.PDS.SetTakedown(ctx, did, in.Takedown.Applied); err != nil {
			return err
		}
	case subjectBlob:
		bc, err := xrpc.ParseCID("subject.cid", sub.CID)
		if err != nil {
			return err
		}
		if _, err := h.PDS.SetQuarantine(ctx, did, bc, in.Takedown.Applied); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, out)
}

// GetSubjectStatus serves com.atproto.admin.getSubjectStatus for an
// account (did) or a blob (did + blob).
func (h *Handlers) GetSubjectStatus(c echo.Context) error {
	if c.QueryParam("uri") != "" {
		return xrpc.InvalidRequest("record takedowns are not supported by this server")
	}
	did, err := xrpc.ParseDID("did", c.QueryParam("did"))
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	acct, err := h.PDS.Accounts.Get(ctx, did)
	if errors.Is(err, accounts.ErrNotFound) {
		return accountNotFound()
	}
	if err != nil {
		return err
	}
	if raw := c.QueryParam("blob"); raw != "" {
		bc, err := xrpc.ParseCID("blob", raw)
		if err != nil {
			return err
		}
		quarantined, err := h.blobQuarantined(c, did, bc)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"subject": subject{Type: subjectBlob, DID: did.String(), CID: bc.String()},
			"takedown": statusAttr{Applied: quarantined}})
	}
	out := map[string]any{"subject": subject{Type: subjectRepo, DID: did.String()},
		"takedown": statusAttr{Applied: acct.Status == "takendown"}}
	if acct.Status == "deactivated" {
		out["deactivated"] = statusAttr{Applied: true}
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handlers) blobQuarantined(c echo.Context, did syntax.DID, bc cid.Cid) (bool, error) {
	b, err := h.PDS.Blobs.Get(c.Request().Context(), did, bc)
	if errors.Is(err, blobs.ErrNotFound) {
		return false, &xrpc.Error{Status: http.StatusBadRequest, Name: "BlobNotFound", Message: "Blob not found"}
	}
	if err != nil {
		return false, err
	}
	return b.Quarantined, nil
}
