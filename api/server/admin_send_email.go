package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// AdminSendEmail serves com.atproto.admin.sendEmail: the admin's message
// to an account's address, through the moderation mailer.
func (h *Handlers) AdminSendEmail(c echo.Context) error {
	var in struct {
		RecipientDID string `json:"recipientDid"`
		Content      string `json:"content"`
		Subject      string `json:"subject"`
		SenderDID    string `json:"senderDid"`
		Comment      string `json:"comment"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	did, err := xrpc.ParseDID("recipientDid", in.RecipientDID)
	if err != nil {
		return err
	}
	if _, err := xrpc.ParseDID("senderDid", in.SenderDID); err != nil {
		return err
	}
	if in.Content == "" {
		return xrpc.InvalidRequest("content is required")
	}
	if err := h.PDS.SendAdminEmail(c.Request().Context(), did, in.Subject, in.Content); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"sent": true})
}
