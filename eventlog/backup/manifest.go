package backup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pdslog/pdslog/eventlog"
)

// Manifest is a generation's small state object (manifests/GEN.json),
// rewritten as shipping goes. The segments are the truth about what was
// shipped (restore and resume list them); the manifest adds what they
// cannot say: the seqs handed out beyond them (Reserved), the keys and
// where blobs live, and purges not yet applied to the backup.
type Manifest struct {
	Version    int       `json:"v"`
	Generation string    `json:"generation"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	Host       string    `json:"host,omitempty"`
	// Head is the last seq shipped (every seq up to it) when written, and
	// HeadTime its append time.
	Head     eventlog.Seq `json:"head"`
	HeadTime time.Time    `json:"headTime,omitzero"`
	// Reserved is a promise made ahead of time: the log's head stays below
	// it while shipping works (the shipper moves it forward first). A
	// restore sets the seq floor to at least Reserved, so no seq a relay
	// may have seen is handed out again, even one not yet shipped.
	Reserved   eventlog.Seq `json:"reserved"`
	LastUpload time.Time    `json:"lastUpload,omitzero"`
	Keys       *KeysInfo    `json:"keys,omitempty"`
	Blobs      BlobsInfo    `json:"blobs"`
	// Purges are account deletions shipped but not yet applied to every
	// segment and blob of the backup (Compact applies them).
	Purges []Purge `json:"purges,omitempty"`
}

// KeysInfo says where the generation's keys are and how they are sealed.
type KeysInfo struct {
	Object string    `json:"object"`
	Method string    `json:"method"` // "passphrase" or "recipient"
	Digest string    `json:"digest"` // SHA-256 of the bundle, to tell when keys/ changed
	Time   time.Time `json:"time"`
}

// Blob locations.
const (
	BlobsInBackup   = "backup"   // shipped under blobs/
	BlobsExternal   = "external" // already in S3/R2 (Bucket, Endpoint, Prefix): not copied
	BlobsNotShipped = "none"
)

// BlobsInfo says where the blob bytes of this generation's events are.
type BlobsInfo struct {
	Location string `json:"location"`
	Bucket   string `json:"bucket,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
}

// Purge is an account deletion: every event of DID below Before is purged.
type Purge struct {
	DID    string       `json:"did"`
	Before eventlog.Seq `json:"before"`
	Seen   time.Time    `json:"seen"`
}

const maxManifest = 4 << 20

// EncodeManifest renders m.
func EncodeManifest(m *Manifest) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(m, "", " ")
}

// DecodeManifest parses and checks a manifest.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > maxManifest {
		return nil, fmt.Errorf("%w: manifest of %d bytes", ErrCorrupt, len(b))
	}
	var probe struct {
		Version int `json:"v"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if probe.Version != 1 {
		return nil, fmt.Errorf("%w: manifest version %d", ErrUnknownVersion, probe.Version)
	}
	m := &Manifest{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: manifest: trailing data", ErrCorrupt)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manifest) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: manifest: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if m.Version != 1 {
		return fmt.Errorf("%w: manifest version %d", ErrUnknownVersion, m.Version)
	}
	if !ValidGeneration(m.Generation) {
		return bad("generation %q", m.Generation)
	}
	if m.Keys != nil && (m.Keys.Object != keysKey(m.Generation) || (m.Keys.Method != "passphrase" && m.Keys.Method != "recipient")) {
		return bad("keys %+v", *m.Keys)
	}
	switch m.Blobs.Location {
	case BlobsInBackup, BlobsNotShipped:
	case BlobsExternal:
		if m.Blobs.Bucket == "" {
			return bad("external blobs without a bucket")
		}
	default:
		return bad("blob location %q", m.Blobs.Location)
	}
	for _, p := range m.Purges {
		if !strings.HasPrefix(p.DID, "did:") || p.Before < 1 {
			return bad("purge %+v", p)
		}
	}
	return nil
}
