package blob

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/labstack/echo/v4"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/api/netguard"
	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/accounts"
)

// tempPrefix names upload temp files, so a restart can remove those a
// crash left behind (CleanTemp).
const tempPrefix = "upload-"

// blobRef is the lexicon's blob object.
type blobRef struct {
	Type     string            `json:"$type"`
	Ref      map[string]string `json:"ref"`
	MimeType string            `json:"mimeType"`
	Size     int64             `json:"size"`
}

func tooLarge(limit int64) *xrpc.Error {
	return &xrpc.Error{Status: http.StatusRequestEntityTooLarge, Name: "PayloadTooLarge",
		Message: fmt.Sprintf("request entity too large: the upload limit is %d bytes", limit)}
}

// bodyReader remembers a read error, so that it is told apart from a
// write error of the temp file.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// sniffer keeps the first 512 bytes for content sniffing.
type sniffer struct{ head []byte }

func (s *sniffer) Write(p []byte) (int, error) {
	if n := 512 - len(s.head); n > 0 {
		s.head = append(s.head, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// UploadBlob serves com.atproto.repo.uploadBlob. The body streams to a
// temp file while it is hashed and its first bytes kept for sniffing;
// nothing is kept when it passes the limit. The bytes are then stored under
// the account and recorded (pds.PutBlob).
func (h *Handlers) UploadBlob(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	req := c.Request()
	ctx := req.Context()
	if h.Limiter != nil {
		d := h.Limiter.Charge(netguard.Key(c.RealIP()), 1, h.PDS.Now())
		if !d.OK {
			return xrpc.TooManyRequests(c, d)
		}
		xrpc.RateLimit(c, d)
	}
	a, err := h.PDS.Accounts.Get(ctx, caller.DID)
	if errors.Is(err, accounts.ErrNotFound) {
		return xrpc.AuthRequired("account not found")
	}
	if err != nil {
		return err
	}
	// Refused before a byte is read: a taken-down account (401
	// AccountTakedown, the reference's checkTakedown). A deactivated account
	// may upload (migration).
	if err := pds.CheckChange(a, false); err != nil {
		return err
	}
	limit := h.maxSize()
	if req.ContentLength > limit {
		return tooLarge(limit)
	}
	// On a nearly full disk, refuse before streaming: the bytes would not
	// be kept (the log refuses the upload's event) and would only eat the
	// space the log keeps in reserve.
	if err := h.PDS.Log.CheckSpace(max(req.ContentLength, 0)); err != nil {
		return err
	}
	f, err := os.CreateTemp(h.TempDir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("upload temp file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	sum := sha256.New()
	sn := &sniffer{}
	body := &bodyReader{r: io.LimitReader(req.Body, limit+1)}
	n, err := io.Copy(io.MultiWriter(f, sum, sn), body)
	if body.err != nil {
		if timedOut := xrpc.BodyTimeout(body.err); timedOut != nil {
			return timedOut
		}
		return xrpc.InvalidRequest("reading the upload: %v", body.err)
	}
	if err != nil { // writing the temp file (a full disk answers 503)
		return fmt.Errorf("upload temp file: %w", err)
	}
	if n > limit {
		return tooLarge(limit)
	}
	if req.ContentLength >= 0 && n != req.ContentLength {
		return xrpc.InvalidRequest("the upload was %d bytes, Content-Length said %d", n, req.ContentLength)
	}
	c2, err := rawCID(sum)
	if err != nil {
		return err
	}
	declared := mediaType(req.Header.Get(echo.HeaderContentType))
	mimeType := sniff(sn.head, declared)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}

	if err := h.PDS.PutBlob(ctx, caller.DID, c2, f, n, mimeType, declared); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"blob": blobRef{Type: "blob", Ref: map[string]string{"$link": c2.String()}, MimeType: mimeType, Size: n}})
}

func rawCID(sum hash.Hash) (cid.Cid, error) {
	mh, err := multihash.Encode(sum.Sum(nil), multihash.SHA2_256)
	if err != nil {
		return cid.Undef, err
	}
	return cid.NewCidV1(cid.Raw, mh), nil
}

// mediaType is a Content-Type without parameters, lower-cased; "" when
// absent or malformed.
func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return ""
	}
	return mt
}

// sniff names the bytes' type from their first bytes. Where the bytes say
// nothing specific (unknown binary, or plain text, which detection cannot
// tell from JSON or CSV), the declared type is used, then
// application/octet-stream, as the reference does.
func sniff(head []byte, declared string) string {
	sniffed := "application/octet-stream"
	if len(head) > 0 {
		sniffed = mediaType(http.DetectContentType(head))
	}
	switch {
	case sniffed != "application/octet-stream" && sniffed != "text/plain":
		return sniffed
	case declared != "" && declared != "*/*":
		return declared
	}
	return sniffed
}

// CleanTemp removes upload temp files a crash left in dir.
func CleanTemp(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.Remove(dir + string(os.PathSeparator) + e.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
