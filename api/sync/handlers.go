package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/repos"
)

// ContentTypeCAR is the media type of the CAR outputs.
const ContentTypeCAR = "application/vnd.ipld.car"

// Handlers serves the com.atproto.sync read methods.
type Handlers struct {
	PDS *pds.PDS
	// AdminPassword lets HTTP basic admin:AdminPassword read repos that are
	// not active; "" disables admin reads.
	AdminPassword string
	Logger        *slog.Logger // nil means slog.Default()
}

func (h *Handlers) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

func repoError(name, msg string) *xrpc.Error {
	return &xrpc.Error{Status: http.StatusBadRequest, Name: name, Message: msg}
}

func repoNotFound(did syntax.DID) *xrpc.Error {
	return repoError("RepoNotFound", "Could not find repo for DID: "+did.String())
}

// unavailable is the error for a repo that is not active, by its status.
func unavailable(did syntax.DID, status string) *xrpc.Error {
	return xrpc.RepoUnavailable(did.String(), status)
}

// didParam parses the required did parameter.
func didParam(c echo.Context) (syntax.DID, error) {
	raw, err := xrpc.Query(c, "did")
	if err != nil {
		return "", err
	}
	return xrpc.ParseDID("did", raw)
}

// repo returns did's durable head and projected state, once every
// projection has applied that head; RepoNotFound if this server does not
// host the repo (never did, or it was deleted).
func (h *Handlers) repo(ctx context.Context, did syntax.DID) (eventlog.RepoHead, *repos.Repo, error) {
	head, err := h.PDS.Log.RepoHead(ctx, did)
	if errors.Is(err, eventlog.ErrNotFound) {
		return head, nil, repoNotFound(did)
	}
	if err != nil {
		return head, nil, fmt.Errorf("sync: repo head of %s: %w", did, err)
	}
	if err := h.PDS.Runner.CatchUp(ctx, head.Seq); err != nil {
		return head, nil, fmt.Errorf("sync: catch up to %d: %w", head.Seq, err)
	}
	r, err := h.PDS.Repos.Get(ctx, did)
	if errors.Is(err, repos.ErrNotFound) {
		return head, nil, repoNotFound(did)
	}
	if err != nil {
		return head, nil, fmt.Errorf("sync: repo %s: %w", did, err)
	}
	if r.Commit == "" {
		return head, nil, repoNotFound(did)
	}
	return head, r, nil
}

// Privileged reports whether the caller may read did's repo whatever its
// status: its owner, or the admin. HTTP basic credentials that are not the
// admin's are refused (401), as the reference's admin verifier does. The
// com.atproto.repo reads and resolveHandle gate on it too.
func (h *Handlers) Privileged(c echo.Context, did syntax.DID) (bool, error) {
	hdr := c.Request().Header.Get(echo.HeaderAuthorization)
	if scheme, _, err := auth.ParseAuthorization(hdr); err == nil && scheme == auth.SchemeBasic {
		if auth.CheckAdmin(hdr, h.AdminPassword) {
			return true, nil
		}
		return false, xrpc.AuthRequired("admin credentials required")
	}
	caller := xrpc.GetCaller(c)
	return caller != nil && caller.DID == did, nil
}

// available returns did's head if the caller may read the repo, else the
// lexicon's error for the repo's status.
func (h *Handlers) available(c echo.Context, did syntax.DID) (eventlog.RepoHead, error) {
	ok, err := h.Privileged(c, did)
	if err != nil {
		return eventlog.RepoHead{}, err
	}
	head, r, err := h.repo(c.Request().Context(), did)
	if err != nil {
		return head, err
	}
	if !r.Active && !ok {
		return head, unavailable(did, r.Status)
	}
	return head, nil
}

// Gate refuses, with the lexicon's error, reads of a repo this caller may
// not read (unknown, deleted, or not active to anyone but its owner and the
// admin). It is blob.Handlers.RepoGate (getBlob, listBlobs); a gated
// method's route takes the owner-or-admin credential policy, so admin
// basic credentials reach it.
func (h *Handlers) Gate(c echo.Context, did syntax.DID) error {
	_, err := h.available(c, did)
	return err
}

// startCAR sets the CAR content type; the first write sends the 200.
func startCAR(c echo.Context) {
	c.Response().Header().Set(echo.HeaderContentType, ContentTypeCAR)
}

// streamFailed handles an error of a CAR stream. Before any byte is sent
// it is the response; after, the status is gone, so the failure is logged
// here (unless the client went away) and the truncated CAR is all the
// client sees.
func (h *Handlers) streamFailed(c echo.Context, did syntax.DID, err error) error {
	if err == nil {
		return nil
	}
	if !c.Response().Committed {
		c.Response().Header().Del(echo.HeaderContentType) // the error is JSON
		return err
	}
	if ctx := c.Request().Context(); ctx.Err() == nil {
		h.logger().Warn("sync: CAR stream failed", "did", did, "path", c.Request().URL.Path, "err", err)
	}
	return nil
}
