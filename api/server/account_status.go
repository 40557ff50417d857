package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
)

// DeactivateAccount serves com.atproto.server.deactivateAccount: the repo
// stops accepting writes and relays learn it from the #account event.
func (s *Sessions) DeactivateAccount(c echo.Context) error {
	return s.setActive(c, false)
}

// ActivateAccount serves com.atproto.server.activateAccount.
func (s *Sessions) ActivateAccount(c echo.Context) error {
	return s.setActive(c, true)
}

func (s *Sessions) setActive(c echo.Context, active bool) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	unlock := s.lock(caller.DID)
	defer unlock()
	a, err := s.Accounts.Get(ctx, caller.DID)
	if err != nil {
		return xrpc.AuthRequired("account not found")
	}
	if a.Status == "takendown" {
		return &xrpc.Error{Status: http.StatusBadRequest, Name: "AccountTakedown", Message: "Account has been taken down"}
	}
	if a.Active == active {
		return c.NoContent(http.StatusOK)
	}
	evs := []*eventlog.Event{}
	if active {
		evs = append(evs,
			&eventlog.Event{Kind: eventlog.KindAccount, DID: a.DID, Account: &eventlog.Account{Active: true}},
			&eventlog.Event{Kind: eventlog.KindIdentity, DID: a.DID, Identity: &eventlog.Identity{Handle: a.Handle}})
		// The reference follows activation with a #sync of the current
		// commit, so relays can resynchronise a repo they stopped serving.
		if s.Blocks != nil {
			head, err := s.Log.RepoHead(ctx, a.DID)
			if err != nil {
				return err
			}
			sync, err := commit.SyncEvent(ctx, a.DID, head, s.Blocks.Source(a.DID))
			if err != nil {
				return err
			}
			evs = append(evs, sync)
		}
	} else {
		evs = append(evs, &eventlog.Event{Kind: eventlog.KindAccount, DID: a.DID, Account: &eventlog.Account{Active: false, Status: "deactivated"}})
	}
	if err := s.append(ctx, evs...); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
