package blob

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/blobs"
)

func blobNotFound() *xrpc.Error {
	e := xrpc.InvalidRequest("Blob not found")
	e.Name = "BlobNotFound"
	return e
}

// GetBlob serves com.atproto.sync.getBlob: the bytes streamed from the
// store with the stored mime type, as an attachment that browsers must not
// sniff or run, with single-range support.
func (h *Handlers) GetBlob(c echo.Context) error {
	ctx := c.Request().Context()
	did, err := xrpc.ParseDID("did", c.QueryParam("did"))
	if err != nil {
		return err
	}
	cc, err := xrpc.ParseCID("cid", c.QueryParam("cid"))
	if err != nil {
		return err
	}
	if err := h.gate(c, did); err != nil {
		return err
	}
	b, err := h.PDS.Blobs.Get(ctx, did, cc)
	if errors.Is(err, blobs.ErrNotFound) {
		return blobNotFound()
	}
	if err != nil {
		return err
	}
	if !b.Uploaded || b.Quarantined {
		return blobNotFound()
	}
	off, n, partial, err := parseRange(c.Request().Header.Get("Range"), b.Size)
	if err != nil {
		c.Response().Header().Set("Content-Range", fmt.Sprintf("bytes */%d", b.Size))
		return &xrpc.Error{Status: http.StatusRequestedRangeNotSatisfiable, Name: "InvalidRequest", Message: err.Error()}
	}
	rc, err := h.PDS.BlobStore.Open(ctx, did, cc, off, n)
	if err != nil {
		return fmt.Errorf("open blob %s: %w", cc, err)
	}
	defer rc.Close()
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, b.MimeType)
	hd.Set(echo.HeaderContentLength, strconv.FormatInt(n, 10))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", cc.String()))
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("ETag", `"`+cc.String()+`"`)
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		hd.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, b.Size))
	}
	c.Response().WriteHeader(status)
	_, err = io.Copy(c.Response(), rc)
	return err // headers are sent: the error handler only logs it
}

// gate refuses blobs of accounts that may not be served to this caller.
func (h *Handlers) gate(c echo.Context, did syntax.DID) error {
	if h.RepoGate != nil {
		return h.RepoGate(c, did)
	}
	return nil
}

// parseRange parses a single "bytes=" range of a size-byte blob into an
// offset and length. No header (or a multi-range one, which may be answered
// whole) gives the whole blob.
func parseRange(hdr string, size int64) (off, n int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(hdr, "bytes=")
	if hdr == "" || !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	switch {
	case first == "": // suffix: the last N bytes
		k, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || k <= 0 {
			return 0, 0, false, fmt.Errorf("bad range %q", hdr)
		}
		k = min(k, size)
		return size - k, k, true, nil
	default:
		a, perr := strconv.ParseInt(first, 10, 64)
		if perr != nil || a < 0 || a >= size {
			return 0, 0, false, fmt.Errorf("range %q is outside the blob's %d bytes", hdr, size)
		}
		b := size - 1
		if last != "" {
			b, perr = strconv.ParseInt(last, 10, 64)
			if perr != nil || b < a {
				return 0, 0, false, fmt.Errorf("bad range %q", hdr)
			}
			b = min(b, size-1)
		}
		return a, b - a + 1, true, nil
	}
}
