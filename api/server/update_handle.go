package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
)

// UpdateHandle serves com.atproto.identity.updateHandle for handles under
// the service's domains: the PLC document's alsoKnownAs is updated (signed
// with the PDS rotation key), then an #identity event tells relays.
func (s *Signup) UpdateHandle(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in struct {
		Handle string `json:"handle"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	handle, err := xrpc.ParseHandle("handle", in.Handle)
	if err != nil {
		return err
	}
	handle = handle.Normalize()
	if !s.Service.HostsHandle(handle) {
		return xerr("UnsupportedDomain", "Not a supported handle domain")
	}
	if s.HandleLimiter != nil {
		if d := s.HandleLimiter.Charge(caller.DID.String(), 1, s.Sessions.now()); !d.OK {
			d.SetHeaders(c.Response().Header())
			return &xrpc.Error{Status: http.StatusTooManyRequests, Name: "RateLimitExceeded", Message: "Rate Limit Exceeded"}
		}
	}
	ctx := c.Request().Context()
	ss := s.Sessions
	unlock := ss.lock(caller.DID)
	defer unlock()
	a, err := ss.Accounts.Get(ctx, caller.DID)
	if err != nil {
		return xrpc.AuthRequired("account not found")
	}
	release, err := s.claims.take(func(pending func(string) int) error {
		return handleFree(ctx, ss.Accounts, handle, a.DID, pending)
	}, handleClaim(handle))
	if err != nil {
		return err
	}
	defer release()
	if a.Handle != handle {
		if _, err := s.PLC.UpdateHandle(ctx, a.DID, s.RotationKey, handle); err != nil {
			return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: "the PLC directory refused the handle update", Err: err}
		}
	}
	// The #identity event is emitted even when the handle did not change,
	// as the reference does, so relays re-resolve.
	if err := ss.append(ctx, &eventlog.Event{Kind: eventlog.KindIdentity, DID: a.DID, Identity: &eventlog.Identity{Handle: handle}}); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
