package proxy

import (
	"context"

	"github.com/labstack/echo/v4"
)

// GetProfile serves app.bsky.actor.getProfile through the AppView (or the
// atproto-proxy service) with read-after-write: the requester's own
// profile shows its latest display name, description, avatar and banner.
func (p *Proxy) GetProfile(c echo.Context) error {
	return p.readAfterWrite(c, getProfileMunge, nil)
}

func getProfileMunge(_ context.Context, v *localViewer, doc obj, local *localRecords) (obj, error) {
	if local.profile == nil || str(doc, "did") != v.did.String() {
		return doc, nil
	}
	return v.updateProfileDetailed(doc, local.profile.value), nil
}
