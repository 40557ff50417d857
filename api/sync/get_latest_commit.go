package sync

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type latestCommitOutput struct {
	CID string `json:"cid"`
	Rev string `json:"rev"`
}

// GetLatestCommit serves com.atproto.sync.getLatestCommit: the CID and rev
// of the repo's durable head commit.
func (h *Handlers) GetLatestCommit(c echo.Context) error {
	did, err := didParam(c)
	if err != nil {
		return err
	}
	head, err := h.available(c, did)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, latestCommitOutput{CID: head.Commit.String(), Rev: head.Rev.String()})
}
