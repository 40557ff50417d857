package proxy

import (
	"context"
	"errors"

	"github.com/labstack/echo/v4"
)

// GetProfiles serves app.bsky.actor.getProfiles through the AppView with
// read-after-write on the requester's own profile among them.
func (p *Proxy) GetProfiles(c echo.Context) error {
	return p.readAfterWrite(c, getProfilesMunge, nil)
}

func getProfilesMunge(_ context.Context, v *localViewer, doc obj, local *localRecords) (obj, error) {
	if local.profile == nil {
		return doc, nil
	}
	profiles, ok := doc["profiles"].([]any)
	if !ok {
		return nil, errors.New("proxy: getProfiles answer without profiles")
	}
	out := make([]any, len(profiles))
	for i, x := range profiles {
		out[i] = x
		if prof, ok := x.(obj); ok && str(prof, "did") == v.did.String() {
			out[i] = v.updateProfileDetailed(prof, local.profile.value)
		}
	}
	doc = clone(doc)
	doc["profiles"] = out
	return doc, nil
}
