package repo

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
)

// checkOAuthScope refuses a write an OAuth caller's scope does not allow:
// repo:<collection>?action=<action> for each write; putRecord (an upsert)
// needs both create and update, as the reference's.
func checkOAuthScope(c echo.Context, writes []commit.Write) error {
	caller := xrpc.GetCaller(c)
	if caller == nil || caller.OAuth == nil {
		return nil
	}
	upsert := strings.HasSuffix(c.Path(), ".putRecord")
	for _, w := range writes {
		actions := []string{w.Action}
		if upsert {
			actions = []string{eventlog.ActionCreate, eventlog.ActionUpdate}
		}
		for _, a := range actions {
			if !caller.OAuth.AllowsRepo(w.Collection.String(), a) {
				return xrpc.ScopeMissing("repo:" + w.Collection.String() + "?action=" + a)
			}
		}
	}
	return nil
}
