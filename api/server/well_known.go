package server

import (
	"errors"
	"net"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/projections/accounts"
)

// AtprotoDID serves /.well-known/atproto-did for hosted handles: the Host
// header names the handle; the answer is its DID as plain text.
func (h *Handlers) AtprotoDID(c echo.Context) error {
	host := c.Request().Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	handle, err := syntax.ParseHandle(host)
	if err != nil || !h.PDS.Service.HostsHandle(handle) {
		return c.String(http.StatusNotFound, "no user by that name")
	}
	a, err := h.PDS.Accounts.ByHandle(c.Request().Context(), handle)
	if errors.Is(err, accounts.ErrNotFound) {
		return c.String(http.StatusNotFound, "no user by that name")
	}
	if err != nil {
		return err
	}
	return c.String(http.StatusOK, a.DID.String())
}

type didDocument struct {
	Context []string     `json:"@context"`
	ID      string       `json:"id"`
	Service []didService `json:"service"`
}

type didService struct {
	ID              string `json:"id"`
	Type            string `json:"type"`
	ServiceEndpoint string `json:"serviceEndpoint"`
}

// DIDDocument serves /.well-known/did.json: the service's did:web document.
func (h *Handlers) DIDDocument(c echo.Context) error {
	return c.JSON(http.StatusOK, didDocument{
		Context: []string{"https://www.w3.org/ns/did/v1"},
		ID:      h.PDS.Service.DID().String(),
		Service: []didService{{ID: "#atproto_pds", Type: "AtprotoPersonalDataServer", ServiceEndpoint: h.PDS.Service.PublicURL()}},
	})
}
