package sync

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type repoStatusOutput struct {
	DID    string `json:"did"`
	Active bool   `json:"active"`
	Status string `json:"status,omitempty"`
	Rev    string `json:"rev,omitempty"`
}

// GetRepoStatus serves com.atproto.sync.getRepoStatus for any hosted repo,
// whatever its status (it takes no credentials): active, the status when
// not active, and the current rev when active, as the reference PDS. A
// deleted or unknown repo is RepoNotFound.
func (h *Handlers) GetRepoStatus(c echo.Context) error {
	did, err := didParam(c)
	if err != nil {
		return err
	}
	head, r, err := h.repo(c.Request().Context(), did)
	if err != nil {
		return err
	}
	out := repoStatusOutput{DID: did.String(), Active: r.Active}
	if r.Active {
		out.Rev = head.Rev.String()
	} else {
		out.Status = r.Status
	}
	return c.JSON(http.StatusOK, out)
}
