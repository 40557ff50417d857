package pds

import (
	"fmt"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Service describes this PDS to the world.
type Service struct {
	Hostname       string   // public hostname, e.g. pds.example.com or localhost
	Port           int      // listening port (in the public URL for localhost)
	HandleDomains  []string // suffixes hosted handles may use, each starting with "."
	InviteRequired bool
	ContactEmail   string
	PrivacyPolicy  string
	TermsOfService string
	// BlobUploadLimit is the largest blob upload accepted, in bytes
	// (PDS_BLOB_UPLOAD_LIMIT), shown by describeServer; 0 when blobs are
	// not served.
	BlobUploadLimit int64
}

// PublicURL is the URL DID documents point to: http://localhost:PORT for
// local use (relays refuse 127.0.0.1), https://HOSTNAME otherwise.
func (s Service) PublicURL() string {
	if s.Hostname == "localhost" {
		return fmt.Sprintf("http://localhost:%d", s.Port)
	}
	return "https://" + s.Hostname
}

// DID is the service's did:web.
func (s Service) DID() syntax.DID { return syntax.DID("did:web:" + s.Hostname) }

// DefaultHandleDomains is what PDS_SERVICE_HANDLE_DOMAINS defaults to: the
// hostname itself (".test" for localhost, as the reference's dev setup).
func DefaultHandleDomains(hostname string) []string {
	if hostname == "localhost" {
		return []string{".test"}
	}
	return []string{"." + hostname}
}

// HostsHandle reports whether handle is under one of the service's domains.
func (s Service) HostsHandle(h syntax.Handle) bool {
	lh := strings.ToLower(h.String())
	for _, d := range s.HandleDomains {
		if strings.HasSuffix(lh, strings.ToLower(d)) && len(lh) > len(d) {
			return true
		}
	}
	return false
}

// Hosted handles (the reference's ensureHandleServiceConstraints): the
// label in front of the service domain is 3 to 18 characters.
const (
	HostedHandleMinLength = 3
	HostedHandleMaxLength = 18
)

// checkHostedHandle applies the reference's rules to a normalised handle
// under one of the service's domains: exactly one label in front of the
// domain (the longest domain it ends with), of 3 to 18 characters, and
// not one of the reference's reserved words. The errors are the
// reference's: InvalidHandle, or HandleNotAvailable for a reserved word.
func (s Service) checkHostedHandle(h syntax.Handle) error {
	lh := strings.ToLower(h.String())
	domain := ""
	for _, d := range s.HandleDomains {
		if strings.HasSuffix(lh, strings.ToLower(d)) && len(lh) > len(d) && len(d) > len(domain) {
			domain = strings.ToLower(d)
		}
	}
	if domain == "" {
		return &Error{Kind: ErrUnsupportedDomain, Msg: "Not a supported handle domain"}
	}
	front := lh[:len(lh)-len(domain)]
	switch {
	case strings.Contains(front, "."):
		return &Error{Kind: ErrInvalidHandle, Msg: "Invalid characters in handle"}
	case len(front) < HostedHandleMinLength:
		return &Error{Kind: ErrInvalidHandle, Msg: "Handle too short"}
	case len(front) > HostedHandleMaxLength:
		return &Error{Kind: ErrInvalidHandle, Msg: "Handle too long"}
	}
	if _, reserved := reservedHandles[front]; reserved {
		return &Error{Kind: ErrHandleNotAvailable, Msg: "Reserved handle"}
	}
	return nil
}
