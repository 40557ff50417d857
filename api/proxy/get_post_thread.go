package proxy

import (
	"context"
	"net/url"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

const typeThreadViewPost = "app.bsky.feed.defs#threadViewPost"

// GetPostThread serves app.bsky.feed.getPostThread through the AppView
// with read-after-write: the requester's replies newer than the AppView's
// rev are inserted in the thread, and a thread of the requester's own post
// the AppView answers NotFound for (it has not indexed it yet) is built
// from the local records, with its parents asked of the AppView.
func (p *Proxy) GetPostThread(c echo.Context) error {
	return p.readAfterWrite(c, getPostThreadMunge, p.postThreadNotFound)
}

func getPostThreadMunge(ctx context.Context, v *localViewer, doc obj, local *localRecords) (obj, error) {
	thread := child(doc, "thread")
	if thread == nil || str(thread, "$type") != typeThreadViewPost {
		return doc, nil
	}
	thread, err := v.addPostsToThread(ctx, thread, local.posts)
	if err != nil {
		return nil, err
	}
	doc = clone(doc)
	doc["thread"] = thread
	return doc, nil
}

// addPostsToThread inserts the local posts that belong to the thread
// (same root) as replies of their parents.
func (v *localViewer) addPostsToThread(ctx context.Context, thread obj, posts []*localRecord) (obj, error) {
	root := str(child(thread, "post"), "uri")
	threadRoot := str(child(thread, "post", "record", "reply", "root"), "uri")
	for _, r := range posts {
		rr := str(child(r.value, "reply", "root"), "uri")
		if rr == "" || (rr != root && rr != threadRoot) {
			continue
		}
		var err error
		if thread, err = v.insertIntoReplies(ctx, thread, r); err != nil {
			return nil, err
		}
	}
	return thread, nil
}

// insertIntoReplies puts post r first among the replies of its parent,
// wherever that is in the thread.
func (v *localViewer) insertIntoReplies(ctx context.Context, view obj, r *localRecord) (obj, error) {
	replies, _ := view["replies"].([]any)
	if str(child(r.value, "reply", "parent"), "uri") == str(child(view, "post"), "uri") {
		tv, err := v.threadPostView(ctx, r)
		if err != nil {
			return nil, err
		}
		out := clone(view)
		out["replies"] = append([]any{tv}, replies...)
		return out, nil
	}
	if replies == nil {
		return view, nil
	}
	next := make([]any, len(replies))
	for i, x := range replies {
		next[i] = x
		if reply, ok := x.(obj); ok && str(reply, "$type") == typeThreadViewPost {
			nr, err := v.insertIntoReplies(ctx, reply, r)
			if err != nil {
				return nil, err
			}
			next[i] = nr
		}
	}
	out := clone(view)
	out["replies"] = next
	return out, nil
}

func (v *localViewer) threadPostView(ctx context.Context, r *localRecord) (obj, error) {
	pv, err := v.postView(ctx, r)
	if err != nil {
		return nil, err
	}
	return obj{"$type": typeThreadViewPost, "post": pv}, nil
}

// postThreadNotFound answers a NotFound for a thread of the requester's
// own post from the local records (readAfterWriteNotFound).
func (p *Proxy) postThreadNotFound(ctx context.Context, c echo.Context, v *localViewer, failure *xrpc.Error) (obj, *localRecords, error) {
	rev := failure.Header.Get("Atproto-Repo-Rev")
	if failure.Name != "NotFound" || rev == "" {
		return nil, nil, nil
	}
	uri, err := syntax.ParseATURI(c.QueryParam("uri"))
	if err != nil {
		return nil, nil, nil
	}
	authority := uri.Authority()
	if h, err := authority.AsHandle(); err == nil {
		if a, err := p.deps.PDS.Accounts.ByHandle(ctx, h.Normalize()); err == nil {
			authority = a.DID.AtIdentifier()
		}
	}
	if authority.String() != v.did.String() {
		return nil, nil, nil
	}
	want := "at://" + v.did.String() + "/" + uri.Collection().String() + "/" + uri.RecordKey().String()
	local, err := p.localSince(ctx, v.did, rev)
	if err != nil {
		return nil, nil, err
	}
	var found *localRecord
	var rest []*localRecord
	for _, r := range local.posts {
		if r.uri == want && found == nil {
			found = r
		} else {
			rest = append(rest, r)
		}
	}
	if found == nil {
		return nil, nil, nil
	}
	thread, err := v.threadPostView(ctx, found)
	if err != nil {
		return nil, nil, err
	}
	if thread, err = v.addPostsToThread(ctx, thread, rest); err != nil {
		return nil, nil, err
	}
	if parent := str(child(found.value, "reply", "parent"), "uri"); parent != "" && p.cfg.AppView != nil {
		q := url.Values{"uri": {parent}, "depth": {"0"}}
		if ph := c.QueryParam("parentHeight"); ph != "" {
			q.Set("parentHeight", ph)
		}
		if res, err := p.callAppView(ctx, v.did, "app.bsky.feed.getPostThread", q); err == nil && res["thread"] != nil {
			thread["parent"] = res["thread"]
		}
	}
	return obj{"thread": thread}, local, nil
}
