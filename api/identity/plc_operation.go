package identity

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/api/xrpc"
)

// SignPLCOperation serves com.atproto.identity.signPlcOperation: the PLC
// operation moving the caller's identity, signed with this PDS's rotation
// key (needs the code mailed by requestPlcOperationSignature).
func (h *Handlers) SignPLCOperation(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in struct {
		Token               string                 `json:"token"`
		RotationKeys        []string               `json:"rotationKeys"`
		AlsoKnownAs         []string               `json:"alsoKnownAs"`
		VerificationMethods map[string]string      `json:"verificationMethods"`
		Services            map[string]plc.Service `json:"services"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	op, err := h.PDS.SignPLCOperation(c.Request().Context(), caller.DID, in.Token, pds.PLCChanges{
		RotationKeys: in.RotationKeys, AlsoKnownAs: in.AlsoKnownAs, VerificationMethods: in.VerificationMethods, Services: in.Services})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"operation": op})
}

// SubmitPLCOperation serves com.atproto.identity.submitPlcOperation: a
// PLC operation (signed by the account's previous host) that hands the
// caller's identity to this PDS goes to the PLC directory.
func (h *Handlers) SubmitPLCOperation(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in struct {
		Operation json.RawMessage `json:"operation"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	var op plc.Op
	if len(in.Operation) == 0 || json.Unmarshal(in.Operation, &op) != nil {
		return xrpc.InvalidRequest("Invalid operation")
	}
	if err := h.PDS.SubmitPLCOperation(c.Request().Context(), caller.DID, &op); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
