package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/records"
)

// Read-after-write, as the reference PDS does it (read-after-write/): the
// AppView says how far it has indexed the requester's repo in the
// atproto-repo-rev header of its answer; when the account has records
// written after that rev, the answer is rewritten to include them, so a
// user sees their post or profile change the moment it is written.

// Limits of the local records considered (getRecordsSinceRev).
const (
	// localRecordsLimit is how many records written since the rev are
	// used, oldest first.
	localRecordsLimit = 10
	// maxCommitsScanned bounds the commits read past the rev: an AppView
	// that far behind gets what the first ones hold.
	maxCommitsScanned = 1000
)

// indexedAtLayout is the fixed-width UTC form timestamps are compared in
// (AppViews write indexedAt with milliseconds).
const indexedAtLayout = "2006-01-02T15:04:05.000Z"

// obj is a JSON object as decoded from an AppView answer (numbers kept as
// json.Number so they re-encode unchanged).
type obj = map[string]any

// localRecord is one of the requester's records written since the rev.
type localRecord struct {
	uri       string
	cid       string
	indexedAt string // when the commit that wrote it was appended
	value     obj
}

// localRecords are the requester's records written since a rev (the
// reference's LocalRecords): how many, the profile if it changed, posts.
type localRecords struct {
	count   int
	profile *localRecord
	posts   []*localRecord
}

// lag is how long ago the oldest profile or post change was written, in
// milliseconds (the Atproto-Upstream-Lag header); ok is false without one.
func (l *localRecords) lag(now time.Time) (int64, bool) {
	oldest := ""
	if l.profile != nil {
		oldest = l.profile.indexedAt
	}
	for _, p := range l.posts {
		if oldest == "" || p.indexedAt < oldest {
			oldest = p.indexedAt
		}
	}
	if oldest == "" {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, oldest)
	if err != nil {
		return 0, false
	}
	return now.Sub(t).Milliseconds(), true
}

// mungeFunc rewrites a decoded upstream answer with the requester's local
// records. An error leaves the answer as the upstream sent it.
type mungeFunc func(ctx context.Context, v *localViewer, doc obj, local *localRecords) (obj, error)

// fallbackFunc may answer in place of an upstream error (getPostThread's
// NotFound for a post the AppView has not seen yet): doc nil means no.
type fallbackFunc func(ctx context.Context, c echo.Context, v *localViewer, failure *xrpc.Error) (doc obj, local *localRecords, err error)

// readAfterWrite forwards the request being served (authenticated; to the
// atproto-proxy service or the AppView) and, when the answer's rev is
// older than the requester's records, answers with munge's rewrite of it.
// Otherwise the answer is relayed as is, streamed.
func (p *Proxy) readAfterWrite(c echo.Context, munge mungeFunc, fallback fallbackFunc) error {
	nsid, err := methodOf(c)
	if err != nil {
		return err
	}
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, err := p.route(ctx, c.Request().Header.Get(HeaderProxy), nsid)
	if err != nil {
		return err
	}
	up, err := p.send(c, t, nsid, caller.DID, modeRead)
	if err != nil {
		return err
	}
	defer up.close()
	if up.resp.StatusCode >= 400 {
		failure := up.failure()
		if fallback != nil {
			doc, local, err := p.tryFallback(ctx, c, caller.DID, failure, fallback)
			if err == nil && doc != nil {
				return p.writeMunged(c, doc, local, failure.Header)
			}
			if err != nil {
				p.log.Warn("read-after-write fallback failed", "did", caller.DID, "nsid", nsid, "err", err)
			}
		}
		return failure
	}
	rev := up.resp.Header.Get("Atproto-Repo-Rev")
	enc := strings.ToLower(up.resp.Header.Get("Content-Encoding"))
	if rev == "" || isJSON(up.resp.Header.Get("Content-Type")) == no || (enc != "" && enc != "identity" && enc != "gzip") {
		return p.relay(c, up)
	}
	local, err := p.localSince(ctx, caller.DID, rev)
	if err != nil {
		p.log.Warn("read-after-write: reading local records failed", "did", caller.DID, "err", err)
		return p.relay(c, up)
	}
	if local.count == 0 {
		return p.relay(c, up)
	}
	body, err := up.read()
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: fmt.Sprintf("Upstream response is larger than %d bytes", up.max)}
		}
		return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: "reading the upstream answer failed", Err: err}
	}
	doc, err := decodeObject(body)
	if err != nil {
		return writeBody(c, up, body, nil)
	}
	v, err := p.viewer(ctx, caller.DID)
	if err == nil {
		doc, err = munge(ctx, v, doc, local)
	}
	if err != nil {
		p.log.Warn("read-after-write munge failed", "did", caller.DID, "nsid", nsid, "err", err)
		return writeBody(c, up, body, nil)
	}
	return p.writeMunged(c, doc, local, up.resp.Header)
}

func (p *Proxy) tryFallback(ctx context.Context, c echo.Context, requester syntax.DID, failure *xrpc.Error, fallback fallbackFunc) (obj, *localRecords, error) {
	v, err := p.viewer(ctx, requester)
	if err != nil {
		return nil, nil, err
	}
	return fallback(ctx, c, v, failure)
}

// writeMunged answers 200 with a rewritten answer, the upstream's
// forwarded headers and Atproto-Upstream-Lag.
func (p *Proxy) writeMunged(c echo.Context, doc obj, local *localRecords, upstreamHeader http.Header) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	w := c.Response()
	writeHeaders(w.Header(), upstreamHeader, false)
	if lag, ok := local.lag(time.Now()); ok {
		w.Header().Set("Atproto-Upstream-Lag", strconv.FormatInt(lag, 10))
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// decodeObject decodes a JSON object, numbers as json.Number.
func decodeObject(b []byte) (obj, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc obj
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errors.New("proxy: answer is not a JSON object")
	}
	return doc, nil
}

// firstCommitAfter returns the rev of did's first commit with seq > after;
// ok is false when there is none.
func (p *Proxy) firstCommitAfter(ctx context.Context, did syntax.DID, after eventlog.Seq) (rev syntax.TID, ok bool, err error) {
	it, err := p.deps.PDS.Log.IterRepo(ctx, did, after)
	if err != nil {
		return "", false, err
	}
	defer it.Close()
	for it.Next() {
		if ev := it.Event(); ev.Kind == eventlog.KindCommit && ev.Commit != nil {
			return ev.Commit.Rev, true, nil
		}
	}
	return "", false, it.Close()
}

// localSince returns did's records written by commits with a rev after
// rev (the reference's getRecordsSinceRev): the oldest localRecordsLimit
// records whose last write is newer than rev, by that write's rev, sorted
// out into the profile and the posts. Nothing when rev is not a TID, when
// the account's head is not newer, or when rev predates every commit of
// the account (the AppView is describing some other history: an account
// that moved here).
//
// The commits after rev are found by binary search over the log's seqs:
// an account's commit revs grow with their seqs.
func (p *Proxy) localSince(ctx context.Context, did syntax.DID, revRaw string) (*localRecords, error) {
	out := &localRecords{}
	since, err := syntax.ParseTID(revRaw)
	if err != nil {
		return out, nil
	}
	head, err := p.deps.PDS.Log.RepoHead(ctx, did)
	if errors.Is(err, eventlog.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if head.Rev.String() <= since.String() {
		return out, nil
	}
	newer := func(after eventlog.Seq) (bool, error) {
		rev, ok, err := p.firstCommitAfter(ctx, did, after)
		return !ok || rev.String() > since.String(), err
	}
	if all, err := newer(0); err != nil || all {
		return out, err
	}
	lo, hi := eventlog.Seq(0), head.Seq
	for lo < hi {
		mid := lo + (hi-lo)/2
		ok, err := newer(mid)
		if err != nil {
			return nil, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	type change struct {
		rev syntax.TID
		cid cid.Cid
		at  syntax.Datetime
	}
	latest := map[string]change{}
	it, err := p.deps.PDS.Log.IterRepo(ctx, did, lo)
	if err != nil {
		return nil, err
	}
	scanned := 0
	for it.Next() && scanned < maxCommitsScanned {
		ev := it.Event()
		if ev.Kind != eventlog.KindCommit || ev.Commit == nil || ev.Commit.Rev.String() <= since.String() {
			continue
		}
		scanned++
		for _, op := range ev.Commit.Ops {
			switch op.Action {
			case eventlog.ActionCreate, eventlog.ActionUpdate:
				latest[op.Path] = change{rev: ev.Commit.Rev, cid: op.CID, at: ev.Time}
			case eventlog.ActionDelete:
				delete(latest, op.Path)
			}
		}
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(latest))
	for path := range latest {
		paths = append(paths, path)
	}
	sort.Slice(paths, func(i, j int) bool {
		a, b := latest[paths[i]], latest[paths[j]]
		if a.rev != b.rev {
			return a.rev.String() < b.rev.String()
		}
		return paths[i] < paths[j]
	})
	if len(paths) > localRecordsLimit {
		paths = paths[:localRecordsLimit]
	}
	if len(paths) == 0 {
		return out, nil
	}
	// The records projection answers with the values; make sure it has
	// applied the commits just read.
	if err := p.deps.PDS.Runner.CatchUp(ctx, head.Seq); err != nil {
		return nil, err
	}
	for _, path := range paths {
		ch := latest[path]
		collRaw, rkeyRaw, _ := strings.Cut(path, "/")
		coll, err1 := syntax.ParseNSID(collRaw)
		rkey, err2 := syntax.ParseRecordKey(rkeyRaw)
		if err1 != nil || err2 != nil {
			continue
		}
		rec, err := p.deps.PDS.Records.Get(ctx, did, coll, rkey)
		if errors.Is(err, records.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !rec.CID.Equals(ch.cid) {
			continue // changed again past the scan
		}
		value, err := recordJSON(rec.Data)
		if err != nil {
			return nil, err
		}
		out.count++
		lr := &localRecord{uri: "at://" + did.String() + "/" + path, cid: rec.CID.String(), indexedAt: indexedAt(ch.at), value: value}
		switch {
		case collRaw == "app.bsky.actor.profile" && rkeyRaw == "self":
			out.profile = lr
		case collRaw == "app.bsky.feed.post":
			out.posts = append(out.posts, lr)
		}
	}
	return out, nil
}

// recordJSON renders a stored DAG-CBOR record as generic JSON (blobs as
// {"$type":"blob","ref":{"$link":…}}, links as {"$link":…}).
func recordJSON(data []byte) (obj, error) {
	m, err := atdata.UnmarshalCBOR(data)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return decodeObject(b)
}

// indexedAt renders an event's time as AppViews write indexedAt.
func indexedAt(t syntax.Datetime) string {
	tt, err := syntax.ParseDatetimeTime(t.String())
	if err != nil {
		return t.String()
	}
	return tt.UTC().Format(indexedAtLayout)
}
