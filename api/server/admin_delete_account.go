package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blobs"
)

// Admin serves com.atproto.admin.* behind HTTP basic auth admin:PASSWORD.
type Admin struct {
	Password   string // PDS_ADMIN_PASSWORD; empty disables admin methods
	Sessions   *Sessions
	Hostname   string     // for invite codes
	ServiceDID syntax.DID // the DID server-level events are about
	// Blobs, if set, is the blob index (blob takedowns).
	Blobs *blobs.Projection
	// DeleteBlobs, if set, removes a deleted account's blob bytes.
	DeleteBlobs func(ctx context.Context, did syntax.DID) error
}

func (a *Admin) check(c echo.Context) error {
	if !auth.CheckAdmin(c.Request().Header.Get(echo.HeaderAuthorization), a.Password) {
		return xrpc.AuthRequired("admin credentials required")
	}
	return nil
}

// DeleteAccount serves com.atproto.admin.deleteAccount: it appends the
// account's #account {active: false, status: "deleted"} event — kept
// forever, so relays and AppViews learn of the deletion — then purges every
// earlier event of the account from the log (their seqs stay as
// tombstones) and waits until every projection has dropped its state.
func (a *Admin) DeleteAccount(c echo.Context) error {
	if err := a.check(c); err != nil {
		return err
	}
	var in struct {
		DID string `json:"did"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	did, err := syntax.ParseDID(in.DID)
	if err != nil {
		return xrpc.InvalidRequest("invalid did %q", in.DID)
	}
	ctx := c.Request().Context()
	s := a.Sessions
	unlock := s.lock(did)
	defer unlock()
	if _, err := s.Accounts.Get(ctx, did); errors.Is(err, accounts.ErrNotFound) {
		return &xrpc.Error{Status: http.StatusBadRequest, Name: "AccountNotFound", Message: "account not found"}
	} else if err != nil {
		return err
	}
	seq, err := s.Log.Append(ctx, &eventlog.Event{Kind: eventlog.KindAccount, DID: did,
		Account: &eventlog.Account{Active: false, Status: "deleted"}})
	if err != nil {
		return err
	}
	// Projections apply the deletion before the purge, so a projection
	// catching up later sees tombstones then the deletion: the same state.
	if err := s.Runner.CatchUp(ctx, seq); err != nil {
		return err
	}
	if _, err := s.Log.Purge(ctx, did, seq); err != nil {
		return err
	}
	// The index forgot the account's blobs with the deletion; the bytes go
	// last (a crash before leaves unreachable bytes, never served).
	if a.DeleteBlobs != nil {
		if err := a.DeleteBlobs(ctx, did); err != nil {
			return fmt.Errorf("delete blobs of %s: %w", did, err)
		}
	}
	return c.NoContent(http.StatusOK)
}
