package blobs

import (
	"encoding/json"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
)

// Private event types this package owns; payloads are JSON. A payload's
// fields never change meaning: add fields, never repurpose them.
const (
	TypeUploaded   = "blob.uploaded"   // Uploaded
	TypeDeleted    = "blob.deleted"    // Deleted
	TypeQuarantine = "blob.quarantine" // Quarantine
)

// Uploaded records a finished upload whose bytes are stored.
type Uploaded struct {
	CID          string `json:"cid"`
	MimeType     string `json:"mimeType"`               // sniffed from the bytes (what we serve)
	DeclaredMime string `json:"declaredMime,omitempty"` // the upload's Content-Type
	Size         int64  `json:"size"`
}

// Deleted records that the collector removed a blob.
type Deleted struct {
	CID    string `json:"cid"`
	Reason string `json:"reason,omitempty"` // "unreferenced", "dereferenced"
}

// Quarantine takes a blob down (On) or restores it.
type Quarantine struct {
	CID string `json:"cid"`
	On  bool   `json:"on"`
}

// Event wraps a payload as a private event of did.
func Event(did syntax.DID, typ string, payload any) (*eventlog.Event, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("blobs: encode %s: %w", typ, err)
	}
	return &eventlog.Event{Kind: eventlog.KindPrivate, DID: did, Private: &eventlog.Private{Type: typ, Data: b}}, nil
}
