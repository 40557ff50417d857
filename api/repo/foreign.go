package repo

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/proxy"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/accounts"
)

// PassThrough forwards a read as it came (proxy.Proxy.PassThrough).
type PassThrough interface {
	PassThrough(c echo.Context) error
}

// lookupRepo resolves a repo parameter (handle or DID) to a hosted
// account; hosted is false, with no error, when no account here has it.
func (h *Handlers) lookupRepo(ctx context.Context, raw string) (a *accounts.Account, hosted bool, err error) {
	id, err := xrpc.ParseAtIdentifier("repo", raw)
	if err != nil {
		return nil, false, err
	}
	if did, derr := id.AsDID(); derr == nil {
		a, err = h.PDS.Accounts.Get(ctx, did)
	} else {
		handle, _ := id.AsHandle()
		a, err = h.PDS.Accounts.ByHandle(ctx, handle.Normalize())
	}
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, false, nil
	}
	return a, err == nil, err
}

// recordElsewhere answers getRecord for a repo this server does not host
// as the reference does: the AppView (or the service the atproto-proxy
// header names) answers, the call passed through without credentials;
// with nowhere to ask, RecordNotFound (the lexicon's error; the reference
// says InvalidRequest).
func (h *Handlers) recordElsewhere(c echo.Context) error {
	if h.Elsewhere != nil {
		err := h.Elsewhere.PassThrough(c)
		if !errors.Is(err, proxy.ErrNoAppView) {
			return err
		}
	}
	return &xrpc.Error{Status: http.StatusBadRequest, Name: "RecordNotFound", Message: "Could not locate record"}
}

// repoNotFound is describeRepo's answer for a repo this server does not
// host, the reference's.
func repoNotFound(raw string) *xrpc.Error {
	return &xrpc.Error{Status: http.StatusBadRequest, Name: "RepoNotFound", Message: "Could not find repo for DID: " + raw}
}
