package sync

import (
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

type listReposOutput struct {
	Cursor string     `json:"cursor,omitempty"`
	Repos  []repoItem `json:"repos"`
}

// repoItem is the lexicon's com.atproto.sync.listRepos#repo.
type repoItem struct {
	DID    string `json:"did"`
	Head   string `json:"head"`
	Rev    string `json:"rev"`
	Active bool   `json:"active"`
	Status string `json:"status,omitempty"`
}

// ListRepos serves com.atproto.sync.listRepos: every hosted repo, active or
// not (with its status), in DID order; limit 1–1000, default 500. The
// cursor is the last DID of a full page; a page shorter than limit is the
// last and has no cursor. Deleted repos are not listed.
func (h *Handlers) ListRepos(c echo.Context) error {
	limit, err := xrpc.Limit(c, 500, 1000)
	if err != nil {
		return err
	}
	var after syntax.DID
	if raw := c.QueryParam("cursor"); raw != "" {
		if after, err = xrpc.ParseDID("cursor", raw); err != nil {
			return err
		}
	}
	list, err := h.PDS.Repos.List(c.Request().Context(), after, limit)
	if err != nil {
		return err
	}
	out := listReposOutput{Repos: make([]repoItem, 0, len(list))}
	for _, r := range list {
		if r.Commit == "" {
			continue // created, first commit not applied yet
		}
		it := repoItem{DID: r.DID.String(), Head: r.Commit, Rev: r.Rev.String(), Active: r.Active}
		if !r.Active {
			it.Status = r.Status
		}
		out.Repos = append(out.Repos, it)
	}
	if len(list) == limit {
		out.Cursor = list[len(list)-1].DID.String()
	}
	return c.JSON(http.StatusOK, out)
}
