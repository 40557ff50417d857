package repo

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// ImportRepo serves com.atproto.repo.importRepo: the caller's repo becomes
// the one in the CAR body (pds.ImportRepo says how it is verified and
// written), streamed, at most MaxImportSize bytes.
func (h *Handlers) ImportRepo(c echo.Context) error {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" && !strings.HasPrefix(ct, "application/vnd.ipld.car") {
		return xrpc.InvalidRequest("importRepo takes a CAR (Content-Type application/vnd.ipld.car), not %q", ct)
	}
	if h.MaxImportSize > 0 && req.ContentLength > h.MaxImportSize {
		return xrpc.InvalidRequest("the repo is larger than this server accepts (%d bytes)", h.MaxImportSize)
	}
	if _, err := h.PDS.ImportRepo(req.Context(), caller.DID, req.Body, h.MaxImportSize); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
