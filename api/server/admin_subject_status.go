package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds"
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

// statusAttr is com.atproto.admin.defs#statusAttr.
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

// subjectNotFound is the reference's answer for a subject it has no state of.
func subjectNotFound() *xrpc.Error {
	return &xrpc.Error{Status: http.StatusBadRequest, Name: "NotFound", Message: "Subject not found"}
}

// UpdateSubjectStatus serves com.atproto.admin.updateSubjectStatus, as the
// reference: takedown (with the moderator's ref) of an account
// (#account takendown, sessions end), of a record (no longer served by
// getRecord and listRecords, kept in the repo) or of a blob (quarantined:
// kept, not served), each reversible; deactivated (de)activates an
// account. The answer echoes the subject and the takedown.
func (h *Handlers) UpdateSubjectStatus(c echo.Context) error {
	var in struct {
		Subject     json.RawMessage `json:"subject"`
		Takedown    *statusAttr     `json:"takedown"`
		Deactivated *statusAttr     `json:"deactivated"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	var sub subject
	if err := json.Unmarshal(in.Subject, &sub); err != nil || sub.Type == "" {
		return xrpc.InvalidRequest("subject must be a typed object")
	}
	if in.Takedown != nil && in.Takedown.Applied && in.Deactivated != nil && !in.Deactivated.Applied {
		return xrpc.InvalidRequest("Cannot activate and takedown an account at the same time")
	}
	ctx := c.Request().Context()
	switch sub.Type {
	case subjectRepo, subjectBlob:
		did, err := xrpc.ParseDID("subject.did", sub.DID)
		if err != nil {
			return err
		}
		if _, err := h.PDS.Accounts.Get(ctx, did); errors.Is(err, accounts.ErrNotFound) {
			return accountNotFound()
		} else if err != nil {
			return err
		}
	case subjectRecord:
		if _, err := xrpc.ParseCID("subject.cid", sub.CID); err != nil {
			return err
		}
	default:
		return xrpc.InvalidRequest("Invalid subject (%s)", sub.Type)
	}
	if t := in.Takedown; t != nil {
		switch sub.Type {
		case subjectRepo:
			if err := h.PDS.TakedownAccount(ctx, syntax.DID(sub.DID), t.Applied, t.Ref); err != nil {
				return err
			}
		case subjectRecord:
			uri, err := syntax.ParseATURI(sub.URI)
			if err != nil {
				return xrpc.InvalidRequest("subject.uri must be an at:// URI")
			}
			if err := h.PDS.TakedownRecord(ctx, uri, t.Applied, t.Ref); err != nil {
				return err
			}
		case subjectBlob:
			bc, err := xrpc.ParseCID("subject.cid", sub.CID)
			if err != nil {
				return err
			}
			if _, err := h.PDS.SetQuarantine(ctx, syntax.DID(sub.DID), bc, t.Applied); err != nil {
				return err
			}
		}
	}
	if d := in.Deactivated; d != nil && sub.Type == subjectRepo {
		if err := h.PDS.SetActive(ctx, syntax.DID(sub.DID), !d.Applied); err != nil {
			return err
		}
	}
	out := map[string]any{"subject": json.RawMessage(in.Subject)}
	if in.Takedown != nil {
		out["takedown"] = in.Takedown
	}
	return c.JSON(http.StatusOK, out)
}

// GetSubjectStatus serves com.atproto.admin.getSubjectStatus, as the
// reference: a blob (did + blob), a record (uri: its current cid) or an
// account (did: takedown with its ref, and deactivated); NotFound for a
// subject this server holds nothing of.
func (h *Handlers) GetSubjectStatus(c echo.Context) error {
	ctx := c.Request().Context()
	rawDID, rawURI, rawBlob := c.QueryParam("did"), c.QueryParam("uri"), c.QueryParam("blob")
	switch {
	case rawBlob != "":
		if rawDID == "" {
			return xrpc.InvalidRequest("Must provide a did to request blob state")
		}
		did, err := xrpc.ParseDID("did", rawDID)
		if err != nil {
			return err
		}
		bc, err := xrpc.ParseCID("blob", rawBlob)
		if err != nil {
			return err
		}
		b, err := h.PDS.Blobs.Get(ctx, did, bc)
		if errors.Is(err, blobs.ErrNotFound) {
			return subjectNotFound()
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"subject": subject{Type: subjectBlob, DID: did.String(), CID: bc.String()},
			"takedown": statusAttr{Applied: b.Quarantined}})
	case rawURI != "":
		uri, err := syntax.ParseATURI(rawURI)
		if err != nil {
			return xrpc.InvalidRequest("uri must be an at:// URI")
		}
		st, err := h.PDS.RecordTakedownStatus(ctx, uri)
		if errors.Is(err, pds.ErrRecordNotFound) || errors.Is(err, pds.ErrInvalidInput) {
			return subjectNotFound()
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"subject": subject{Type: subjectRecord, URI: uri.String(), CID: st.CID},
			"takedown": statusAttr{Applied: st.TakenDown, Ref: st.TakedownRef}})
	case rawDID != "":
		did, err := xrpc.ParseDID("did", rawDID)
		if err != nil {
			return err
		}
		acct, err := h.PDS.Accounts.Get(ctx, did)
		if errors.Is(err, accounts.ErrNotFound) {
			return subjectNotFound()
		}
		if err != nil {
			return err
		}
		takedown := statusAttr{Applied: acct.Status == pds.StatusTakendown}
		if takedown.Applied {
			takedown.Ref = acct.TakedownRef
		}
		return c.JSON(http.StatusOK, map[string]any{"subject": subject{Type: subjectRepo, DID: did.String()},
			"takedown": takedown, "deactivated": statusAttr{Applied: acct.Status == pds.StatusDeactivated}})
	}
	return xrpc.InvalidRequest("No provided subject")
}
