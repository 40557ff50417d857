package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/ssrf"
	"github.com/pdslog/pdslog/projections/records"
)

// localViewer builds AppView-shaped views of the requester's own records
// (the reference's LocalViewer): post views with zero counts, the basic
// profile view of the author, embed views.
type localViewer struct {
	p       *Proxy
	did     syntax.DID
	handle  string
	profile obj // the current profile record; nil when there is none
}

func (p *Proxy) viewer(ctx context.Context, did syntax.DID) (*localViewer, error) {
	a, err := p.deps.PDS.Accounts.Get(ctx, did)
	if err != nil {
		return nil, fmt.Errorf("proxy: viewer %s: %w", did, err)
	}
	v := &localViewer{p: p, did: did, handle: a.Handle.String()}
	if v.handle == "" {
		v.handle = syntax.HandleInvalid.String()
	}
	rec, err := p.deps.PDS.Records.Get(ctx, did, "app.bsky.actor.profile", "self")
	switch {
	case errors.Is(err, records.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		if v.profile, err = recordJSON(rec.Data); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// imageURL is the URL of an image blob: the AppView CDN's when a pattern
// is configured ("%s" filled with preset, DID, CID), else this PDS's
// getBlob.
func (p *Proxy) imageURL(preset string, did syntax.DID, cid string) string {
	if pat := p.cfg.AppViewCDNURLPattern; pat != "" {
		for _, s := range []string{preset, did.String(), cid} {
			pat = strings.Replace(pat, "%s", s, 1)
		}
		return pat
	}
	return p.deps.PDS.Service.PublicURL() + "/xrpc/com.atproto.sync.getBlob?did=" + did.String() + "&cid=" + cid
}

// blobCID is the CID of a blob value ({"ref":{"$link":…}}, or a legacy
// {"cid":…}), "" when v is not one.
func blobCID(v any) string {
	m, ok := v.(obj)
	if !ok {
		return ""
	}
	if ref, ok := m["ref"].(obj); ok {
		if s, ok := ref["$link"].(string); ok {
			return s
		}
	}
	if s, ok := m["cid"].(string); ok {
		return s
	}
	return ""
}

func str(m obj, k string) string {
	s, _ := m[k].(string)
	return s
}

func child(m obj, keys ...string) obj {
	for _, k := range keys {
		next, ok := m[k].(obj)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

func clone(m obj) obj {
	out := make(obj, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// setOrDelete sets k to v, or removes it when v is nil or "".
func setOrDelete(m obj, k string, v any) {
	if v == nil || v == "" {
		delete(m, k)
		return
	}
	m[k] = v
}

// profileBasic is the requester's app.bsky.actor.defs#profileViewBasic.
func (v *localViewer) profileBasic() obj {
	out := obj{"did": v.did.String(), "handle": v.handle}
	if v.profile != nil {
		if dn, ok := v.profile["displayName"]; ok {
			out["displayName"] = dn
		}
		if c := blobCID(v.profile["avatar"]); c != "" {
			out["avatar"] = v.p.imageURL("avatar", v.did, c)
		}
	}
	return out
}

// updateProfileViewBasic brings a profile view's display name and avatar
// up to date with profile record rec.
func (v *localViewer) updateProfileViewBasic(view, rec obj) obj {
	out := clone(view)
	setOrDelete(out, "displayName", rec["displayName"])
	var avatar any
	if c := blobCID(rec["avatar"]); c != "" {
		avatar = v.p.imageURL("avatar", v.did, c)
	}
	setOrDelete(out, "avatar", avatar)
	return out
}

// updateProfileDetailed also updates description and banner.
func (v *localViewer) updateProfileDetailed(view, rec obj) obj {
	out := v.updateProfileViewBasic(view, rec)
	setOrDelete(out, "description", rec["description"])
	var banner any
	if c := blobCID(rec["banner"]); c != "" {
		banner = v.p.imageURL("banner", v.did, c)
	}
	setOrDelete(out, "banner", banner)
	return out
}

// postView is the app.bsky.feed.defs#postView of a local post: counts are
// zero right after it is written.
func (v *localViewer) postView(ctx context.Context, r *localRecord) (obj, error) {
	pv := obj{
		"uri": r.uri, "cid": r.cid,
		"likeCount": 0, "replyCount": 0, "repostCount": 0, "quoteCount": 0,
		"author": v.profileBasic(), "record": r.value, "indexedAt": r.indexedAt,
	}
	embed, err := v.formatEmbed(ctx, r.value)
	if err != nil {
		return nil, err
	}
	if embed != nil {
		pv["embed"] = embed
	}
	return pv, nil
}

// formatEmbed is the view of a post's embed: images, external links,
// quoted records and records with media; nil for others (video …).
func (v *localViewer) formatEmbed(ctx context.Context, post obj) (obj, error) {
	embed := child(post, "embed")
	if embed == nil {
		return nil, nil
	}
	switch str(embed, "$type") {
	case "app.bsky.embed.images":
		return v.imagesView(embed), nil
	case "app.bsky.embed.external":
		return v.externalView(embed), nil
	case "app.bsky.embed.record":
		return v.recordView(ctx, embed)
	case "app.bsky.embed.recordWithMedia":
		media := child(embed, "media")
		var mv obj
		switch str(media, "$type") {
		case "app.bsky.embed.images":
			mv = v.imagesView(media)
		case "app.bsky.embed.external":
			mv = v.externalView(media)
		default:
			return nil, nil
		}
		rec := child(embed, "record")
		if rec == nil {
			return nil, nil
		}
		rv, err := v.recordView(ctx, rec)
		if err != nil {
			return nil, err
		}
		return obj{"$type": "app.bsky.embed.recordWithMedia#view", "record": rv, "media": mv}, nil
	}
	return nil, nil
}

func (v *localViewer) imagesView(embed obj) obj {
	imgs, _ := embed["images"].([]any)
	out := make([]any, 0, len(imgs))
	for _, x := range imgs {
		img, ok := x.(obj)
		if !ok {
			continue
		}
		c := blobCID(img["image"])
		iv := obj{"thumb": v.p.imageURL("feed_thumbnail", v.did, c), "fullsize": v.p.imageURL("feed_fullsize", v.did, c), "alt": img["alt"]}
		if ar, ok := img["aspectRatio"]; ok {
			iv["aspectRatio"] = ar
		}
		out = append(out, iv)
	}
	return obj{"$type": "app.bsky.embed.images#view", "images": out}
}

func (v *localViewer) externalView(embed obj) obj {
	ext := child(embed, "external")
	ev := obj{"uri": ext["uri"], "title": ext["title"], "description": ext["description"]}
	if c := blobCID(ext["thumb"]); c != "" {
		ev["thumb"] = v.p.imageURL("feed_thumbnail", v.did, c)
	}
	return obj{"$type": "app.bsky.embed.external#view", "external": ev}
}

// recordView is the app.bsky.embed.record#view of a quoted record, asked
// of the configured AppView; viewNotFound when it has none.
func (v *localViewer) recordView(ctx context.Context, embed obj) (obj, error) {
	uri := str(child(embed, "record"), "uri")
	view, err := v.quotedRecord(ctx, uri)
	if err != nil {
		return nil, err
	}
	if view == nil {
		view = obj{"$type": "app.bsky.embed.record#viewNotFound", "uri": uri, "notFound": true}
	}
	return obj{"$type": "app.bsky.embed.record#view", "record": view}, nil
}

func (v *localViewer) quotedRecord(ctx context.Context, uri string) (obj, error) {
	if v.p.cfg.AppView == nil {
		return nil, nil
	}
	at, err := syntax.ParseATURI(uri)
	if err != nil {
		return nil, nil
	}
	switch at.Collection() {
	case "app.bsky.feed.post":
		res, err := v.p.callAppView(ctx, v.did, "app.bsky.feed.getPosts", url.Values{"uris": {uri}})
		if err != nil {
			return nil, err
		}
		posts, _ := res["posts"].([]any)
		if len(posts) == 0 {
			return nil, nil
		}
		post, _ := posts[0].(obj)
		if post == nil {
			return nil, nil
		}
		out := obj{"$type": "app.bsky.embed.record#viewRecord", "uri": post["uri"], "cid": post["cid"], "author": post["author"],
			"value": post["record"], "indexedAt": post["indexedAt"]}
		if l, ok := post["labels"]; ok {
			out["labels"] = l
		}
		if e, ok := post["embed"]; ok {
			out["embeds"] = []any{e}
		}
		return out, nil
	case "app.bsky.feed.generator":
		res, err := v.p.callAppView(ctx, v.did, "app.bsky.feed.getFeedGenerator", url.Values{"feed": {uri}})
		if err != nil {
			return nil, err
		}
		if view := child(res, "view"); view != nil {
			view = clone(view)
			view["$type"] = "app.bsky.feed.defs#generatorView"
			return view, nil
		}
		return nil, errors.New("proxy: getFeedGenerator answer without a view")
	case "app.bsky.graph.list":
		res, err := v.p.callAppView(ctx, v.did, "app.bsky.graph.getList", url.Values{"list": {uri}})
		if err != nil {
			return nil, err
		}
		if list := child(res, "list"); list != nil {
			list = clone(list)
			list["$type"] = "app.bsky.graph.defs#listView"
			return list, nil
		}
		return nil, errors.New("proxy: getList answer without a list")
	}
	return nil, nil
}

// callAppView calls a query of the configured AppView on behalf of iss
// and decodes its JSON answer.
func (p *Proxy) callAppView(ctx context.Context, iss syntax.DID, method syntax.NSID, q url.Values) (obj, error) {
	av := p.cfg.AppView
	if av == nil {
		return nil, errors.New("proxy: no AppView configured")
	}
	t := &Target{DID: av.DID, ServiceID: ServiceAppView, URL: av.URL}
	base, err := url.Parse(av.URL)
	if err != nil {
		return nil, err
	}
	if err := ssrf.CheckURL(base, !p.cfg.DisableSSRFProtection); err != nil {
		return nil, err
	}
	tok, err := p.signer.Sign(ctx, iss, p.audience(t), method)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.HeadersTimeout+p.cfg.BodyTimeout)
	defer cancel()
	u := url.URL{Scheme: base.Scheme, Host: base.Host, Path: "/xrpc/" + method.String(), RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", "pdslog")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil, fmt.Errorf("proxy: %s answered %d", method, resp.StatusCode)
	}
	b, err := decodeBody(resp.Body, resp.Header.Get("Content-Encoding"), p.cfg.MaxResponseSize)
	if err != nil {
		return nil, err
	}
	return decodeObject(b)
}

// insertPostsInFeed inserts the local posts newer than the feed's last
// item into a feed, by indexedAt (formatAndInsertPostsInFeed).
func (v *localViewer) insertPostsInFeed(ctx context.Context, feed []any, posts []*localRecord) ([]any, error) {
	if len(posts) == 0 {
		return feed, nil
	}
	itemTime := func(x any) (string, error) {
		item, _ := x.(obj)
		post := child(item, "post")
		if post == nil {
			return "", errors.New("proxy: feed item without a post")
		}
		return str(post, "indexedAt"), nil
	}
	last := "1970-01-01T00:00:00.000Z"
	if len(feed) > 0 {
		t, err := itemTime(feed[len(feed)-1])
		if err != nil {
			return nil, err
		}
		last = t
	}
	out := append([]any{}, feed...)
	for i := len(posts) - 1; i >= 0; i-- { // newest first
		r := posts[i]
		if r.indexedAt <= last {
			continue
		}
		pv, err := v.postView(ctx, r)
		if err != nil {
			return nil, err
		}
		idx := -1
		for j, x := range out {
			t, err := itemTime(x)
			if err != nil {
				return nil, err
			}
			if t < r.indexedAt {
				idx = j
				break
			}
		}
		item := obj{"post": pv}
		if idx < 0 {
			out = append(out, item)
		} else {
			out = append(out[:idx], append([]any{item}, out[idx:]...)...)
		}
	}
	return out, nil
}

// updateAuthorInFeed brings the requester's author views in a feed up to
// date with its new profile record.
func (v *localViewer) updateAuthorInFeed(feed []any, profile *localRecord) []any {
	if profile == nil {
		return feed
	}
	out := make([]any, len(feed))
	for i, x := range feed {
		out[i] = x
		item, _ := x.(obj)
		post := child(item, "post")
		if post == nil || str(child(post, "author"), "did") != v.did.String() {
			continue
		}
		post = clone(post)
		post["author"] = v.updateProfileViewBasic(child(post, "author"), profile.value)
		item = clone(item)
		item["post"] = post
		out[i] = item
	}
	return out
}
