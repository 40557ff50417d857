package proxy

import (
	"context"
	"errors"

	"github.com/labstack/echo/v4"
)

// GetAuthorFeed serves app.bsky.feed.getAuthorFeed through the AppView with
// read-after-write: on the requester's own feed, their posts newer than
// the AppView's rev are inserted and their author views updated.
func (p *Proxy) GetAuthorFeed(c echo.Context) error {
	return p.readAfterWrite(c, getAuthorFeedMunge, nil)
}

func getAuthorFeedMunge(ctx context.Context, v *localViewer, doc obj, local *localRecords) (obj, error) {
	feed, ok := doc["feed"].([]any)
	if !ok {
		return nil, errors.New("proxy: getAuthorFeed answer without a feed")
	}
	if !isUsersFeed(feed, v.did.String()) {
		return doc, nil
	}
	feed = v.updateAuthorInFeed(feed, local.profile)
	feed, err := v.insertPostsInFeed(ctx, feed, local.posts)
	if err != nil {
		return nil, err
	}
	doc = clone(doc)
	doc["feed"] = feed
	return doc, nil
}

// isUsersFeed reports whether an author feed is the requester's: its
// first item is their post, or their repost.
func isUsersFeed(feed []any, did string) bool {
	if len(feed) == 0 {
		return false
	}
	first, _ := feed[0].(obj)
	reason := child(first, "reason")
	if reason == nil {
		return str(child(first, "post", "author"), "did") == did
	}
	return str(reason, "$type") == "app.bsky.feed.defs#reasonRepost" && str(child(reason, "by"), "did") == did
}
