package proxy

import (
	"context"
	"errors"

	"github.com/labstack/echo/v4"
)

// GetTimeline serves app.bsky.feed.getTimeline through the AppView with
// read-after-write: the requester's posts newer than the AppView's rev
// are inserted by time.
func (p *Proxy) GetTimeline(c echo.Context) error {
	return p.readAfterWrite(c, getTimelineMunge, nil)
}

func getTimelineMunge(ctx context.Context, v *localViewer, doc obj, local *localRecords) (obj, error) {
	feed, ok := doc["feed"].([]any)
	if !ok {
		return nil, errors.New("proxy: getTimeline answer without a feed")
	}
	feed, err := v.insertPostsInFeed(ctx, feed, local.posts)
	if err != nil {
		return nil, err
	}
	doc = clone(doc)
	doc["feed"] = feed
	return doc, nil
}
