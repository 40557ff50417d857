package proxy

import (
	"context"
	"errors"

	"github.com/labstack/echo/v4"
)

// GetActorLikes serves app.bsky.feed.getActorLikes through the AppView
// with read-after-write: the requester's author views show their latest
// profile.
func (p *Proxy) GetActorLikes(c echo.Context) error {
	return p.readAfterWrite(c, getActorLikesMunge, nil)
}

func getActorLikesMunge(_ context.Context, v *localViewer, doc obj, local *localRecords) (obj, error) {
	feed, ok := doc["feed"].([]any)
	if !ok {
		return nil, errors.New("proxy: getActorLikes answer without a feed")
	}
	doc = clone(doc)
	doc["feed"] = v.updateAuthorInFeed(feed, local.profile)
	return doc, nil
}
