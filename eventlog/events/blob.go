package events

// Blob bookkeeping types. The bytes themselves live in the blob store
// (eventlog/blobstore); these events say which exist and for whom.
const (
	TypeBlobUploaded   = "blob.uploaded"   // BlobUploaded
	TypeBlobDeleted    = "blob.deleted"    // BlobDeleted
	TypeBlobQuarantine = "blob.quarantine" // BlobQuarantine
)

// BlobUploaded records a finished upload whose bytes are stored.
type BlobUploaded struct {
	CID          string `json:"cid"`
	MimeType     string `json:"mimeType"`               // sniffed from the bytes (what we serve)
	DeclaredMime string `json:"declaredMime,omitempty"` // the upload's Content-Type
	Size         int64  `json:"size"`
}

// BlobDeleted records that the collector removed a blob.
type BlobDeleted struct {
	CID    string `json:"cid"`
	Reason string `json:"reason,omitempty"` // "unreferenced", "dereferenced"
}

// BlobQuarantine takes a blob down (On) or restores it.
type BlobQuarantine struct {
	CID string `json:"cid"`
	On  bool   `json:"on"`
}

func (*BlobUploaded) Type() string   { return TypeBlobUploaded }
func (*BlobDeleted) Type() string    { return TypeBlobDeleted }
func (*BlobQuarantine) Type() string { return TypeBlobQuarantine }

func (*BlobUploaded) Secret() bool   { return false }
func (*BlobDeleted) Secret() bool    { return false }
func (*BlobQuarantine) Secret() bool { return false }
