package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type describeServerOutput struct {
	DID                       string   `json:"did"`
	AvailableUserDomains      []string `json:"availableUserDomains"`
	InviteCodeRequired        bool     `json:"inviteCodeRequired"`
	PhoneVerificationRequired bool     `json:"phoneVerificationRequired"`
	Links                     links    `json:"links"`
	Contact                   contact  `json:"contact"`
	// BlobUploadLimit is pdslog's own field (lexicon objects are open):
	// clients can size uploads without trial and error.
	BlobUploadLimit int64 `json:"blobUploadLimit,omitempty"`
}

type links struct {
	PrivacyPolicy  string `json:"privacyPolicy,omitempty"`
	TermsOfService string `json:"termsOfService,omitempty"`
}

type contact struct {
	Email string `json:"email,omitempty"`
}

// DescribeServer serves com.atproto.server.describeServer.
func (h *Handlers) DescribeServer(c echo.Context) error {
	out := describeServerOutput{DID: h.PDS.Service.DID().String(), AvailableUserDomains: h.PDS.Service.HandleDomains,
		InviteCodeRequired: h.PDS.Service.InviteRequired, BlobUploadLimit: h.PDS.Service.BlobUploadLimit}
	// Always there, empty when unset, as the reference answers.
	out.Links = links{PrivacyPolicy: h.PDS.Service.PrivacyPolicy, TermsOfService: h.PDS.Service.TermsOfService}
	out.Contact = contact{Email: h.PDS.Service.ContactEmail}
	return c.JSON(http.StatusOK, out)
}
