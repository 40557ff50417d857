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
	DID         string `json:"did"`
	PlcOp       any    `json:"plcOp"`
}

type createAccountOutput struct {
	AccessJwt  string `json:"accessJwt"`
	RefreshJwt string `json:"refreshJwt"`
	Handle     string `json:"handle"`
	DID        string `json:"did"`
	DIDDoc     any    `json:"didDoc,omitempty"`
}

// CreateAccount serves com.atproto.server.createAccount (pds.CreateAccount
// says what a signup makes). With did, the account of an identity moving
// here: the request must carry a service-auth JWT from that DID for this
// method (the route's serviceAuthOptional policy checks it).
func (h *Handlers) CreateAccount(c echo.Context) error {
	var in createAccountInput
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	handle, err := syntax.ParseHandle(in.Handle)
	if err != nil {
		return &xrpc.Error{Status: http.StatusBadRequest, Name: "InvalidHandle", Message: "Input/handle must be a valid handle"}
	}
	if in.PlcOp != nil {
		return xrpc.InvalidRequest(`Unsupported input: "plcOp"`)
	}
	var did syntax.DID
	if in.DID != "" {
		if did, err = xrpc.ParseDID("did", in.DID); err != nil {
			return err
		}
		if caller := xrpc.GetCaller(c); caller == nil || caller.DID != did {
			return &xrpc.Error{Status: http.StatusUnauthorized, Name: "AuthenticationRequired", Message: "Missing auth to create account with did: " + in.DID}
		}
	}
	a, sess, err := h.PDS.CreateAccount(c.Request().Context(), pds.NewAccount{Handle: handle, Email: in.Email, Password: in.Password,
		InviteCode: in.InviteCode, RecoveryKey: in.RecoveryKey, DID: did})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, createAccountOutput{AccessJwt: sess.AccessJwt, RefreshJwt: sess.RefreshJwt, Handle: a.Handle.String(), DID: a.DID.String(),
		DIDDoc: h.signupDIDDoc(c.Request().Context(), a, did != "")})
}
