package server

import (
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/xrpc"
)

type createAccountInput struct {
	Email       string `json:"email"`
	Handle      string `json:"handle"`
	InviteCode  string `json:"inviteCode"`
	Password    string `json:"password"`
	RecoveryKey string `json:"recoveryKey"`
}

type createAccountOutput struct {
	AccessJwt  string `json:"accessJwt"`
	RefreshJwt string `json:"refreshJwt"`
	Handle     string `json:"handle"`
	DID        string `json:"did"`
}

// CreateAccount serves com.atproto.server.createAccount (pds.CreateAccount
// says what a signup makes).
func (h *Handlers) CreateAccount(c echo.Context) error {
	var in createAccountInput
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	handle, err := syntax.ParseHandle(in.Handle)
	if err != nil {
		return &xrpc.Error{Status: http.StatusBadRequest, Name: "InvalidHandle", Message: "Input/handle must be a valid handle"}
	}
	a, sess, err := h.PDS.CreateAccount(c.Request().Context(), pds.NewAccount{Handle: handle, Email: in.Email, Password: in.Password,
		InviteCode: in.InviteCode, RecoveryKey: in.RecoveryKey})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, createAccountOutput{AccessJwt: sess.AccessJwt, RefreshJwt: sess.RefreshJwt, Handle: a.Handle.String(), DID: a.DID.String()})
}
