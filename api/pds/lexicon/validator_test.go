package lexicon

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/google/go-cmp/cmp"
)

func shippedValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func parse(t testing.TB, js string) map[string]any {
	t.Helper()
	rec, err := atdata.UnmarshalJSON([]byte(js))
	if err != nil {
		t.Fatalf("not atproto data: %v\n%s", err, js)
	}
	return rec
}

// Realistic records, written as a client would send them.
const (
	did     = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	postURI = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3k43tv4rft22g"
	postCID = "bafyreidsemiehpaya7tpoqfsgxvxkepmwmzfljvdovbvmmiznxuks5injm"
	jpegCID = "bafkreiaknx2iuj7ppw2iwij56pn2qt5ndo2p3g2hk2g2d5lqybt5tjegp4"
	pngCID  = "bafkreiboyamdleodxhqhtjbqghmsfxuajjvvlrkavmf4yfag4sgzdlyjfu"
	tid     = syntax.RecordKey("3lbqxyzh2fk2a")
)

var typicalPost = `{
  "$type": "app.bsky.feed.post",
  "text": "hi @alice.test, read https://example.com/a #atproto 🦋",
  "createdAt": "2026-07-01T12:34:56.789Z",
  "langs": ["en", "pt-BR"],
  "facets": [
    {"index": {"byteStart": 3, "byteEnd": 14},
     "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "` + did + `"}]},
    {"index": {"byteStart": 21, "byteEnd": 42},
     "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a"}]},
    {"index": {"byteStart": 43, "byteEnd": 51},
     "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "atproto"}]}
  ],
  "reply": {
    "root": {"uri": "` + postURI + `", "cid": "` + postCID + `"},
    "parent": {"$type": "com.atproto.repo.strongRef", "uri": "` + postURI + `", "cid": "` + postCID + `"}
  },
  "embed": {
    "$type": "app.bsky.embed.images",
    "images": [{
      "alt": "a cat on a keyboard",
      "image": {"$type": "blob", "ref": {"$link": "` + jpegCID + `"}, "mimeType": "image/jpeg", "size": 483012},
      "aspectRatio": {"width": 2000, "height": 1500}
    }]
  },
  "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nudity"}]},
  "tags": ["cats"],
  "clientExtra": {"anything": ["goes", 1, true]}
}`

const like = `{"$type": "app.bsky.feed.like",
  "subject": {"uri": "` + postURI + `", "cid": "` + postCID + `"},
  "createdAt": "2026-07-01T12:34:56Z"}`

const follow = `{"$type": "app.bsky.graph.follow", "subject": "` + did + `", "createdAt": "2026-07-01T12:34:56.000+02:00"}`

const profile = `{"$type": "app.bsky.actor.profile",
  "displayName": "Alice 🌷",
  "description": "hello\nworld",
  "avatar": {"$type": "blob", "ref": {"$link": "` + pngCID + `"}, "mimeType": "image/png", "size": 90210},
  "pinnedPost": {"uri": "` + postURI + `", "cid": "` + postCID + `"},
  "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "!no-unauthenticated"}]},
  "createdAt": "2024-01-01T00:00:00Z"}`

// edit applies JSON-ish string replacements to a record template.
func edit(js string, oldNew ...string) string {
	return strings.NewReplacer(oldNew...).Replace(js)
}

func TestValidRecords(t *testing.T) {
	v := shippedValidator(t)
	tests := []struct {
		name       string
		collection syntax.NSID
		rkey       syntax.RecordKey
		rec        string
	}{
		{"post with facets, image, reply, langs, labels", "app.bsky.feed.post", tid, typicalPost},
		{"minimal post", "app.bsky.feed.post", tid, `{"$type": "app.bsky.feed.post", "text": "", "createdAt": "2026-07-01T12:34:56Z"}`},
		{"post without $type (the commit fills it in)", "app.bsky.feed.post", tid, `{"text": "x", "createdAt": "2026-07-01T12:34:56Z"}`},
		{"post of exactly 300 graphemes", "app.bsky.feed.post", tid, edit(typicalPost, `"text": "hi @alice.test, read https://example.com/a #atproto 🦋"`, `"text": "`+strings.Repeat("🦋", 300)+`"`)},
		{"post with an external embed", "app.bsky.feed.post", tid, `{"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-07-01T12:34:56Z",
			"embed": {"$type": "app.bsky.embed.external", "external": {"uri": "https://example.com", "title": "t", "description": "d",
			"thumb": {"$type": "blob", "ref": {"$link": "` + jpegCID + `"}, "mimeType": "image/jpeg", "size": 1000}}}}`},
		{"quote post with media", "app.bsky.feed.post", tid, `{"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-07-01T12:34:56Z",
			"embed": {"$type": "app.bsky.embed.recordWithMedia",
			  "record": {"$type": "app.bsky.embed.record", "record": {"uri": "` + postURI + `", "cid": "` + postCID + `"}},
			  "media": {"$type": "app.bsky.embed.images", "images": []}}}`},
		{"open union: unlisted embed type is not validated", "app.bsky.feed.post", tid, `{"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-07-01T12:34:56Z",
			"embed": {"$type": "com.example.embed.poll", "options": 3}}`},
		{"open union: known but unlisted type is not validated", "app.bsky.feed.post", tid, `{"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-07-01T12:34:56Z",
			"embed": {"$type": "app.bsky.embed.images#view", "images": "not an array"}}`},
		{"language tag indigo refuses", "app.bsky.feed.post", tid, `{"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-07-01T12:34:56Z", "langs": ["X-fr-CH", "i-default"]}`},
		{"like", "app.bsky.feed.like", tid, like},
		{"follow", "app.bsky.graph.follow", tid, follow},
		{"profile", "app.bsky.actor.profile", "self", profile},
		{"empty profile", "app.bsky.actor.profile", "self", `{"$type": "app.bsky.actor.profile"}`},
		{"list (ref to a string def)", "app.bsky.graph.list", tid, `{"$type": "app.bsky.graph.list", "name": "friends", "purpose": "app.bsky.graph.defs#curatelist", "createdAt": "2026-07-01T12:34:56Z"}`},
		{"threadgate with rules", "app.bsky.feed.threadgate", "3k43tv4rft22g", `{"$type": "app.bsky.feed.threadgate", "post": "` + postURI + `", "createdAt": "2026-07-01T12:34:56Z",
			"allow": [{"$type": "app.bsky.feed.threadgate#mentionRule"}, {"$type": "app.bsky.feed.threadgate#listRule", "list": "at://` + did + `/app.bsky.graph.list/3k43tv4rft22g"}]}`},
		{"chat declaration", "chat.bsky.actor.declaration", "self", `{"$type": "chat.bsky.actor.declaration", "allowIncoming": "following"}`},
		{"empty rkey skips the key check", "app.bsky.actor.profile", "", `{"$type": "app.bsky.actor.profile"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range []Mode{ModeDefault, ModeRequire} {
				st, err := v.Validate(tt.collection, tt.rkey, parse(t, tt.rec), mode)
				if err != nil || st != StatusValid {
					t.Errorf("mode %d: got (%q, %v), want valid", mode, st, err)
				}
			}
		})
	}
}

func TestInvalidRecords(t *testing.T) {
	v := shippedValidator(t)
	tests := []struct {
		name       string
		collection syntax.NSID
		rkey       syntax.RecordKey
		rec        string
		want       string // the whole message
	}{
		{"text over 300 graphemes", "app.bsky.feed.post", tid,
			edit(typicalPost, `"text": "hi @alice.test, read https://example.com/a #atproto 🦋"`, `"text": "`+strings.Repeat("é", 301)+`"`),
			"Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"},
		{"text over 3000 bytes", "app.bsky.feed.post", tid,
			edit(typicalPost, `"text": "hi @alice.test, read https://example.com/a #atproto 🦋"`, `"text": "`+strings.Repeat("👩‍👩‍👧", 200)+`"`),
			"Invalid app.bsky.feed.post record: Record/text must not be longer than 3000 characters"},
		{"missing createdAt", "app.bsky.feed.post", tid,
			edit(typicalPost, `"createdAt": "2026-07-01T12:34:56.789Z",`, ``),
			`Invalid app.bsky.feed.post record: Record must have the property "createdAt"`},
		{"text is a number", "app.bsky.feed.post", tid,
			edit(typicalPost, `"text": "hi @alice.test, read https://example.com/a #atproto 🦋"`, `"text": 42`),
			"Invalid app.bsky.feed.post record: Record/text must be a string"},
		{"langs is a string", "app.bsky.feed.post", tid,
			edit(typicalPost, `"langs": ["en", "pt-BR"]`, `"langs": "en"`),
			"Invalid app.bsky.feed.post record: Record/langs must be an array"},
		{"more than 3 langs", "app.bsky.feed.post", tid,
			edit(typicalPost, `"langs": ["en", "pt-BR"]`, `"langs": ["en", "de", "fr", "it"]`),
			"Invalid app.bsky.feed.post record: Record/langs must not have more than 3 elements"},
		{"language tag indigo accepts", "app.bsky.feed.post", tid,
			edit(typicalPost, `"langs": ["en", "pt-BR"]`, `"langs": ["en", "de-DE-1901-1901"]`),
			"Invalid app.bsky.feed.post record: Record/langs/1 must be a well-formed BCP 47 language tag"},
		{"datetime without timezone", "app.bsky.feed.post", tid,
			edit(typicalPost, `"createdAt": "2026-07-01T12:34:56.789Z"`, `"createdAt": "2026-07-01T12:34:56"`),
			"Invalid app.bsky.feed.post record: Record/createdAt must be a valid atproto datetime (RFC 3339 with a timezone)"},
		{"datetime not a date", "app.bsky.feed.post", tid,
			edit(typicalPost, `"createdAt": "2026-07-01T12:34:56.789Z"`, `"createdAt": "yesterday"`),
			"Invalid app.bsky.feed.post record: Record/createdAt must be a valid atproto datetime (RFC 3339 with a timezone)"},
		{"bad mention DID in a facet", "app.bsky.feed.post", tid,
			edit(typicalPost, `"did": "`+did+`"`, `"did": "alice.test"`),
			"Invalid app.bsky.feed.post record: Record/facets/0/features/0/did must be a valid did"},
		{"facet without $type", "app.bsky.feed.post", tid,
			edit(typicalPost, `{"$type": "app.bsky.richtext.facet#tag", "tag": "atproto"}`, `{"tag": "atproto"}`),
			`Invalid app.bsky.feed.post record: Record/facets/2/features/0 must be an object which includes the "$type" property`},
		{"image missing alt", "app.bsky.feed.post", tid,
			edit(typicalPost, `"alt": "a cat on a keyboard",`, ``),
			`Invalid app.bsky.feed.post record: Record/embed/images/0 must have the property "alt"`},
		{"image is a video", "app.bsky.feed.post", tid,
			edit(typicalPost, `"mimeType": "image/jpeg"`, `"mimeType": "video/mp4"`),
			"Invalid app.bsky.feed.post record: Record/embed/images/0/image/mimeType must be one of (image/*)"},
		{"image over 2 MB", "app.bsky.feed.post", tid,
			edit(typicalPost, `"size": 483012`, `"size": 2000001`),
			"Invalid app.bsky.feed.post record: Record/embed/images/0/image must not be larger than 2000000 bytes"},
		{"legacy blob", "app.bsky.feed.post", tid,
			edit(typicalPost, `{"$type": "blob", "ref": {"$link": "`+jpegCID+`"}, "mimeType": "image/jpeg", "size": 483012}`, `{"cid": "`+jpegCID+`", "mimeType": "image/jpeg"}`),
			"Invalid app.bsky.feed.post record: Record/embed/images/0/image must be a blob ref, not a legacy blob"},
		{"image is a string", "app.bsky.feed.post", tid,
			edit(typicalPost, `{"$type": "blob", "ref": {"$link": "`+jpegCID+`"}, "mimeType": "image/jpeg", "size": 483012}`, `"https://example.com/cat.jpg"`),
			"Invalid app.bsky.feed.post record: Record/embed/images/0/image should be a blob ref"},
		{"aspect ratio of zero", "app.bsky.feed.post", tid,
			edit(typicalPost, `"width": 2000`, `"width": 0`),
			"Invalid app.bsky.feed.post record: Record/embed/images/0/aspectRatio/width can not be less than 1"},
		{"bad at-uri in reply root", "app.bsky.feed.post", tid,
			edit(typicalPost, `"root": {"uri": "`+postURI+`"`, `"root": {"uri": "https://bsky.app/post/1"`),
			"Invalid app.bsky.feed.post record: Record/reply/root/uri must be a valid at-uri"},
		{"strong ref with another $type", "app.bsky.feed.post", tid,
			edit(typicalPost, `"parent": {"$type": "com.atproto.repo.strongRef"`, `"parent": {"$type": "app.bsky.feed.defs#postView"`),
			"Invalid app.bsky.feed.post record: Record/reply/parent/$type must be com.atproto.repo.strongRef"},
		{"unknown field has no effect but a bad known one does", "app.bsky.feed.post", tid,
			edit(typicalPost, `"tags": ["cats"]`, `"tags": ["`+strings.Repeat("a", 641)+`"]`),
			"Invalid app.bsky.feed.post record: Record/tags/0 must not be longer than 640 characters"},
		{"first bad field in name order", "app.bsky.feed.post", tid,
			`{"$type": "app.bsky.feed.post", "text": 1, "createdAt": 2, "langs": 3}`,
			"Invalid app.bsky.feed.post record: Record/createdAt must be a string"},
		{"like: bad at-uri in subject", "app.bsky.feed.like", tid,
			edit(like, postURI, "at://not a uri"),
			"Invalid app.bsky.feed.like record: Record/subject/uri must be a valid at-uri"},
		{"like: bad cid in subject", "app.bsky.feed.like", tid,
			edit(like, `"cid": "`+postCID+`"`, `"cid": "Qmfoo"`),
			"Invalid app.bsky.feed.like record: Record/subject/cid must be a cid string"},
		{"like: subject is an at-uri string", "app.bsky.feed.like", tid,
			edit(like, `{"uri": "`+postURI+`", "cid": "`+postCID+`"}`, `"`+postURI+`"`),
			"Invalid app.bsky.feed.like record: Record/subject must be an object"},
		{"follow: bad DID", "app.bsky.graph.follow", tid,
			edit(follow, did, "did:PLC:abc"),
			"Invalid app.bsky.graph.follow record: Record/subject must be a valid did"},
		{"follow: handle instead of DID", "app.bsky.graph.follow", tid,
			edit(follow, did, "alice.bsky.social"),
			"Invalid app.bsky.graph.follow record: Record/subject must be a valid did"},
		{"profile: display name over 64 graphemes", "app.bsky.actor.profile", "self",
			edit(profile, "Alice 🌷", strings.Repeat("a", 65)),
			"Invalid app.bsky.actor.profile record: Record/displayName must not be longer than 64 graphemes"},
		{"profile: gif avatar", "app.bsky.actor.profile", "self",
			edit(profile, "image/png", "image/gif"),
			"Invalid app.bsky.actor.profile record: Record/avatar/mimeType must be one of (image/png|image/jpeg)"},
		{"profile: self label without val", "app.bsky.actor.profile", "self",
			edit(profile, `{"val": "!no-unauthenticated"}`, `{}`),
			`Invalid app.bsky.actor.profile record: Record/labels/values/0 must have the property "val"`},
		{"profile: wrong rkey", "app.bsky.actor.profile", tid, profile,
			`Invalid record key for app.bsky.actor.profile: must be "self"`},
		{"post: rkey not a TID", "app.bsky.feed.post", "self", typicalPost,
			"Invalid record key for app.bsky.feed.post: must be a valid TID"},
		{"list: closed enum-like ref target with wrong type", "app.bsky.graph.list", tid,
			`{"$type": "app.bsky.graph.list", "name": "x", "purpose": 7, "createdAt": "2026-07-01T12:34:56Z"}`,
			"Invalid app.bsky.graph.list record: Record/purpose must be a string"},
		{"germ declaration: short version", "com.germnetwork.declaration", "self",
			`{"$type": "com.germnetwork.declaration", "version": "1", "currentKey": {"$bytes": "AAEC"}}`,
			"Invalid com.germnetwork.declaration record: Record/version must not be shorter than 5 characters"},
		{"$type of another collection", "app.bsky.feed.like", tid, follow,
			"Invalid $type: expected app.bsky.feed.like, got app.bsky.graph.follow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range []Mode{ModeDefault, ModeRequire} {
				st, err := v.Validate(tt.collection, tt.rkey, parse(t, tt.rec), mode)
				if !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("mode %d: got (%q, %v), want ErrInvalidRecord", mode, st, err)
				}
				if st != "" {
					t.Errorf("mode %d: status %q with an error", mode, st)
				}
				if got := err.Error(); got != tt.want {
					t.Errorf("mode %d: message\n got %s\nwant %s", mode, got, tt.want)
				}
			}
		})
	}
}

// The validate parameter, as the reference handles it: an unknown
// collection is "unknown" by default, refused when validation is required,
// and not looked at when it is skipped; so is an invalid record of a known
// type when validation is skipped. A lexicon that is not a record (a query,
// a defs file, an object def) is not a known record type: the reference
// looks the collection up among its record schemas only.
func TestModes(t *testing.T) {
	v := shippedValidator(t)
	badPost := `{"$type": "app.bsky.feed.post", "text": 1}`
	tests := []struct {
		name       string
		collection syntax.NSID
		rec        string
		mode       Mode
		want       Status
		wantErr    string
	}{
		{"unknown collection, default", "com.example.thing", `{"$type": "com.example.thing", "x": 1}`, ModeDefault, StatusUnknown, ""},
		{"unknown collection, require", "com.example.thing", `{"$type": "com.example.thing", "x": 1}`, ModeRequire, "", "Unknown lexicon type: com.example.thing"},
		{"unknown collection, skip", "com.example.thing", `{"$type": "com.example.thing", "x": 1}`, ModeSkip, "", ""},
		{"known valid, skip", "app.bsky.graph.follow", follow, ModeSkip, "", ""},
		{"known invalid, skip", "app.bsky.feed.post", badPost, ModeSkip, "", ""},
		{"known invalid, default", "app.bsky.feed.post", badPost, ModeDefault, "", `Invalid app.bsky.feed.post record: Record must have the property "createdAt"`},
		{"query lexicon, default", "app.bsky.feed.getTimeline", `{"$type": "app.bsky.feed.getTimeline"}`, ModeDefault, StatusUnknown, ""},
		{"query lexicon, require", "app.bsky.feed.getTimeline", `{"$type": "app.bsky.feed.getTimeline"}`, ModeRequire, "", "Unknown lexicon type: app.bsky.feed.getTimeline"},
		{"defs lexicon, require", "app.bsky.feed.defs", `{"$type": "app.bsky.feed.defs"}`, ModeRequire, "", "Unknown lexicon type: app.bsky.feed.defs"},
		{"object lexicon, require", "app.bsky.embed.images", `{"$type": "app.bsky.embed.images", "images": []}`, ModeRequire, "", "Unknown lexicon type: app.bsky.embed.images"},
		{"record type the reference does not know, default", "site.standard.document", `{"$type": "site.standard.document"}`, ModeDefault, StatusUnknown, ""},
		{"$type mismatch, skip", "com.example.thing", `{"$type": "com.example.other"}`, ModeSkip, "", "Invalid $type: expected com.example.thing, got com.example.other"},
		{"$type mismatch, default", "com.example.thing", `{"$type": "com.example.other"}`, ModeDefault, "", "Invalid $type: expected com.example.thing, got com.example.other"},
		{"unknown collection without $type, default", "com.example.thing", `{"x": 1}`, ModeDefault, StatusUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := v.Validate(tt.collection, tid, parse(t, tt.rec), tt.mode)
			if tt.wantErr == "" {
				if err != nil || st != tt.want {
					t.Fatalf("got (%q, %v), want (%q, nil)", st, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidRecord) || err.Error() != tt.wantErr || st != "" {
				t.Fatalf("got (%q, %v), want error %q", st, err, tt.wantErr)
			}
		})
	}
}

func TestNonMapInput(t *testing.T) {
	v := shippedValidator(t)
	if _, err := v.Validate("app.bsky.feed.post", tid, nil, ModeSkip); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("nil record: %v", err)
	}
	if _, err := v.Validate("app.bsky.feed.post", tid, map[string]any{"$type": int64(1)}, ModeSkip); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("non-string $type: %v", err)
	}
}

func TestModeOf(t *testing.T) {
	yes, no := true, false
	for _, tt := range []struct {
		in   *bool
		want Mode
	}{{nil, ModeDefault}, {&yes, ModeRequire}, {&no, ModeSkip}} {
		if got := ModeOf(tt.in); got != tt.want {
			t.Errorf("ModeOf(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// The shipped record types are exactly the ones the reference PDS validates
// (bluesky-social/atproto packages/pds/src/repo/prepare.ts, knownSchemas).
func TestShippedRecordTypes(t *testing.T) {
	want := []syntax.NSID{
		"app.bsky.actor.profile",
		"app.bsky.actor.status",
		"app.bsky.feed.generator",
		"app.bsky.feed.like",
		"app.bsky.feed.post",
		"app.bsky.feed.postgate",
		"app.bsky.feed.repost",
		"app.bsky.feed.threadgate",
		"app.bsky.graph.block",
		"app.bsky.graph.follow",
		"app.bsky.graph.list",
		"app.bsky.graph.listblock",
		"app.bsky.graph.listitem",
		"app.bsky.graph.starterpack",
		"app.bsky.graph.verification",
		"app.bsky.labeler.service",
		"app.bsky.notification.declaration",
		"chat.bsky.actor.declaration",
		"com.atproto.lexicon.schema",
		"com.germnetwork.declaration",
	}
	if diff := cmp.Diff(want, shippedValidator(t).RecordTypes()); diff != "" {
		t.Errorf("record types (-want +got):\n%s", diff)
	}
}

func TestNewIsShared(t *testing.T) {
	a, b := shippedValidator(t), shippedValidator(t)
	if a != b {
		t.Error("New loaded the catalog twice")
	}
}

// A ref reachable from a record type that does not resolve fails the load.
func TestNewFromFSMissingRef(t *testing.T) {
	fsys := fstest.MapFS{"a.json": {Data: []byte(`{"lexicon": 1, "id": "com.example.a", "defs": {"main": {
		"type": "record", "key": "tid", "record": {"type": "object", "properties": {
		"x": {"type": "ref", "ref": "com.example.b#thing"}}}}}}`)}}
	if _, err := NewFromFS(fsys); err == nil || !strings.Contains(err.Error(), "com.example.b#thing") {
		t.Fatalf("got %v, want an error naming the missing ref", err)
	}
	fsys["b.json"] = &fstest.MapFile{Data: []byte(`{"lexicon": 1, "id": "com.example.b", "defs": {"thing": {"type": "string"}}}`)}
	if _, err := NewFromFS(fsys); err != nil {
		t.Fatal(err)
	}
	fsys["c.json"] = &fstest.MapFile{Data: []byte(`{"lexicon": 1, "id": "com.example.b", "defs": {"other": {"type": "string"}}}`)}
	if _, err := NewFromFS(fsys); err == nil {
		t.Fatal("the same NSID in two files was accepted")
	}
}

// Extra data-shape cases on the interop catalog that the vectors only
// cover together with another fault.
func TestInteropCatalogMore(t *testing.T) {
	v := interopValidator(t)
	tests := []struct {
		name string
		rec  string
		want string // "" for valid
	}{
		{"unknown is a bool", `{"integer": 1, "unknown": false}`, "Record/unknown must be an object"},
		{"unknown is bytes", `{"integer": 1, "unknown": {"$bytes": "AAEC"}}`, "Record/unknown must be an object"},
		{"nullable string is null", `{"integer": 1, "nullableString": null}`, ""},
		{"boolean const-free", `{"integer": 1, "boolean": false}`, ""},
		{"cid-link is a string", `{"integer": 1, "cid-link": "` + postCID + `"}`, "Record/cid-link must be a CID"},
		{"cid-link", `{"integer": 1, "cid-link": {"$link": "` + postCID + `"}}`, ""},
		{"closed union member", `{"integer": 1, "closedUnion": {"$type": "example.lexicon.record#demoObject", "a": 1}}`, ""},
		{"ref object with its own $type", `{"integer": 1, "ref": {"$type": "example.lexicon.record#demoObject", "a": 1}}`, ""},
		{"ref object with another $type", `{"integer": 1, "ref": {"$type": "example.lexicon.record#demoObjectTwo", "a": 1}}`, "Record/ref/$type must be example.lexicon.record#demoObject"},
		{"known values are not enforced", `{"integer": 1, "knownString": "purple"}`, ""},
		{"integer in range", `{"integer": 1, "rangeInteger": 10}`, ""},
		{"integer below range", `{"integer": 1, "rangeInteger": 9}`, "Record/rangeInteger can not be less than 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := parse(t, tt.rec)
			st, err := v.Validate(interopNSID, "demo", rec, ModeDefault)
			if tt.want == "" {
				if err != nil || st != StatusValid {
					t.Fatalf("got (%q, %v), want valid", st, err)
				}
				return
			}
			want := "Invalid example.lexicon.record record: " + tt.want
			if !errors.Is(err, ErrInvalidRecord) || err.Error() != want {
				t.Fatalf("got (%q, %v), want %q", st, err, want)
			}
		})
	}
	if _, err := v.Validate(interopNSID, "other", parse(t, `{"integer": 1}`), ModeDefault); err == nil ||
		err.Error() != `Invalid record key for example.lexicon.record: must be "demo"` {
		t.Errorf("literal key: %v", err)
	}
}

// Where our verdict differs from indigo's lexicon.ValidateRecord on the
// shipped catalog, it is on purpose, to match the reference: language
// tags (langtag, not indigo's parser), open unions (an unlisted $type is
// not validated) and typed objects (a ref'd object must not carry another
// $type). Everything else agrees.
func TestAgreesWithIndigoExceptOnPurpose(t *testing.T) {
	v := shippedValidator(t)
	type verdict struct{ ours, indigo bool }
	tests := []struct {
		name string
		rec  string
		want verdict
	}{
		{"typical post", typicalPost, verdict{true, true}},
		{"missing createdAt", edit(typicalPost, `"createdAt": "2026-07-01T12:34:56.789Z",`, ``), verdict{false, false}},
		{"indigo refuses a valid tag", edit(typicalPost, `"pt-BR"`, `"X-fr-CH"`), verdict{true, false}},
		{"indigo accepts an invalid tag", edit(typicalPost, `"pt-BR"`, `"en-a-foo-a-bar"`), verdict{false, true}},
		{"indigo validates an unlisted open-union member", `{"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-07-01T12:34:56Z",
			"embed": {"$type": "app.bsky.embed.images#view", "images": 1}}`, verdict{true, false}},
		{"indigo ignores a typed object's $type", edit(typicalPost, `"parent": {"$type": "com.atproto.repo.strongRef"`, `"parent": {"$type": "com.example.x"`), verdict{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := parse(t, tt.rec)
			_, err := v.Validate("app.bsky.feed.post", tid, rec, ModeDefault)
			got := verdict{err == nil, lexicon.ValidateRecord(v.cat, rec, "app.bsky.feed.post", 0) == nil}
			if got != tt.want {
				t.Errorf("valid per (ours, indigo) = %v, want %v (our error: %v)", got, tt.want, err)
			}
		})
	}
}

// Validators are shared between request goroutines.
func TestConcurrentValidate(t *testing.T) {
	v := shippedValidator(t)
	good, bad := parse(t, typicalPost), parse(t, edit(typicalPost, `"size": 483012`, `"size": 2000001`))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := v.Validate("app.bsky.feed.post", tid, good, ModeDefault); err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Validate("app.bsky.feed.post", tid, bad, ModeDefault); err == nil {
					t.Error("bad post accepted")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMethodKind(t *testing.T) {
	v := shippedValidator(t)
	for nsid, want := range map[string]string{
		"com.atproto.repo.getRecord":        KindQuery,
		"com.atproto.repo.createRecord":     KindProcedure,
		"com.atproto.sync.subscribeRepos":   KindSubscription,
		"app.bsky.feed.getTimeline":         KindQuery,
		"app.bsky.feed.post":                "",
		"com.example.nothing":               "",
		"com.atproto.temp.checkSignupQueue": KindQuery,
	} {
		if got := v.MethodKind(nsid); got != want {
			t.Errorf("%s: %q, want %q", nsid, got, want)
		}
	}
}
