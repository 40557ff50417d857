package server_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest"
)

type statusOut struct {
	Subject struct {
		Type string `json:"$type"`
		DID  string `json:"did"`
		URI  string `json:"uri"`
		CID  string `json:"cid"`
	} `json:"subject"`
	Takedown *struct {
		Applied bool
		Ref     string
	} `json:"takedown"`
	Deactivated *struct{ Applied bool } `json:"deactivated"`
}

func subjectStatus(t *testing.T, env *apitest.Env, q url.Values) (*apitest.Response, statusOut) {
	t.Helper()
	r := env.Do("GET", "/xrpc/com.atproto.admin.getSubjectStatus", q, adminAuth, nil)
	var out statusOut
	if r.Status == 200 {
		r.JSON(t, &out)
	}
	return r, out
}

// TestRecordTakedown: a record taken down (updateSubjectStatus with a
// strongRef) is no longer served by getRecord or listRecords but stays in
// the repo (sync.getRecord still proves it); getSubjectStatus reports it
// with its ref and current cid; an update keeps the takedown, a reversal
// serves it again, a deletion ends it; replay gives the same state.
func TestRecordTakedown(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	var rkeys []string
	var cids []string
	for i := range 3 {
		r := env.Do("POST", "/xrpc/com.atproto.repo.createRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post",
			"record": map[string]any{"text": "post " + string(rune('a'+i)), "createdAt": "2026-11-26T12:00:00.000Z"}})
		want(t, r, 200, "")
		var out struct{ URI, CID string }
		r.JSON(t, &out)
		rkeys = append(rkeys, out.URI[strings.LastIndex(out.URI, "/")+1:])
		cids = append(cids, out.CID)
	}
	uri := "at://" + a.DID.String() + "/app.bsky.feed.post/" + rkeys[1]
	subject := map[string]any{"$type": "com.atproto.repo.strongRef", "uri": uri, "cid": cids[1]}
	takedown := func(applied bool, ref string) {
		t.Helper()
		td := map[string]any{"applied": applied}
		if ref != "" {
			td["ref"] = ref
		}
		r := post(env, "com.atproto.admin.updateSubjectStatus", adminAuth, map[string]any{"subject": subject, "takedown": td})
		want(t, r, 200, "")
		if !strings.Contains(string(r.Body), `"uri":"`+uri+`"`) || !strings.Contains(string(r.Body), `"takedown":{"applied":`) {
			t.Fatalf("updateSubjectStatus answer: %s", r.Body)
		}
	}
	get := func(rkey string) *apitest.Response {
		return env.Do("GET", "/xrpc/com.atproto.repo.getRecord", url.Values{"repo": {a.DID.String()}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, "", nil)
	}
	listed := func() string {
		t.Helper()
		r := env.Do("GET", "/xrpc/com.atproto.repo.listRecords", url.Values{"repo": {a.DID.String()}, "collection": {"app.bsky.feed.post"}}, "", nil)
		want(t, r, 200, "")
		var out struct{ Records []struct{ URI string } }
		r.JSON(t, &out)
		var got []string
		for _, rec := range out.Records {
			got = append(got, rec.URI[strings.LastIndex(rec.URI, "/")+1:])
		}
		return strings.Join(got, ",")
	}
	served := func(when string, yes bool) {
		t.Helper()
		r := get(rkeys[1])
		if yes {
			want(t, r, 200, "")
			if !strings.Contains(listed(), rkeys[1]) {
				t.Fatalf("%s: not listed: %s", when, listed())
			}
		} else {
			want(t, r, 400, "RecordNotFound")
			if l := listed(); strings.Contains(l, rkeys[1]) || l != rkeys[2]+","+rkeys[0] {
				t.Fatalf("%s: listed %s", when, l)
			}
		}
		// The repo keeps it either way.
		sr := env.Do("GET", "/xrpc/com.atproto.sync.getRecord", url.Values{"did": {a.DID.String()}, "collection": {"app.bsky.feed.post"}, "rkey": {rkeys[1]}}, "", nil)
		want(t, sr, 200, "")
	}
	status := func() statusOut {
		t.Helper()
		r, st := subjectStatus(t, env, url.Values{"uri": {uri}})
		want(t, r, 200, "")
		if st.Subject.Type != "com.atproto.repo.strongRef" || st.Subject.URI != uri || st.Subject.CID == "" || st.Takedown == nil {
			t.Fatalf("getSubjectStatus: %s", r.Body)
		}
		return st
	}

	served("before", true)
	if st := status(); st.Takedown.Applied {
		t.Fatalf("not taken down yet: %+v", st)
	}
	takedown(true, "case-7")
	served("taken down", false)
	if st := status(); !st.Takedown.Applied || st.Takedown.Ref != "case-7" || st.Subject.CID != cids[1] {
		t.Fatalf("status: %+v", st)
	}
	if err := env.Runner.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	served("taken down, after replay", false)

	// An update keeps the takedown (and the status shows the new cid).
	r := env.Do("POST", "/xrpc/com.atproto.repo.putRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkeys[1],
		"record": map[string]any{"text": "edited", "createdAt": "2026-11-26T12:00:00.000Z"}})
	want(t, r, 200, "")
	served("updated", false)
	if st := status(); !st.Takedown.Applied || st.Subject.CID == cids[1] {
		t.Fatalf("status after update: %+v", st)
	}
	takedown(false, "")
	served("reversed", true)

	// A takedown without a ref gets the time as its ref.
	takedown(true, "")
	if st := status(); !st.Takedown.Applied || !isDatetime(st.Takedown.Ref) {
		t.Fatalf("default ref: %+v", st)
	}
	// A deletion ends it: the path made again is served.
	want(t, env.Do("POST", "/xrpc/com.atproto.repo.deleteRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkeys[1]}), 200, "")
	if r, _ := subjectStatus(t, env, url.Values{"uri": {uri}}); r.Status != 400 || r.ErrorName() != "NotFound" {
		t.Fatalf("status of a deleted record: %d %s", r.Status, r.Body)
	}
	takedown(true, "gone") // a record not in the repo: nothing to do, as the reference
	r = env.Do("POST", "/xrpc/com.atproto.repo.putRecord", nil, a.Token, map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkeys[1],
		"record": map[string]any{"text": "again", "createdAt": "2026-11-26T12:00:00.000Z"}})
	want(t, r, 200, "")
	served("made again", true)

	// Refusals.
	want(t, post(env, "com.atproto.admin.updateSubjectStatus", a.Token, map[string]any{"subject": subject, "takedown": map[string]any{"applied": true}}), 401, "")
	want(t, post(env, "com.atproto.admin.updateSubjectStatus", adminAuth, map[string]any{"subject": map[string]any{"$type": "com.atproto.repo.strongRef", "uri": "not-a-uri", "cid": cids[0]},
		"takedown": map[string]any{"applied": true}}), 400, "InvalidRequest")
	want(t, post(env, "com.atproto.admin.updateSubjectStatus", adminAuth, map[string]any{"subject": map[string]any{"$type": "com.example.thing"},
		"takedown": map[string]any{"applied": true}}), 400, "InvalidRequest")
}

// TestAccountTakedownStatus: getSubjectStatus of an account has the
// reference's fields (takedown with the moderator's ref, deactivated); a
// takedown ends the account's sessions; the reversal clears the ref;
// asking about nothing, or about an unknown account, is refused as the
// reference refuses.
func TestAccountTakedownStatus(t *testing.T) {
	env := apitest.New(t)
	a := env.CreateAccount()
	q := url.Values{"did": {a.DID.String()}}
	r, st := subjectStatus(t, env, q)
	want(t, r, 200, "")
	if st.Subject.Type != "com.atproto.admin.defs#repoRef" || st.Subject.DID != a.DID.String() || st.Takedown == nil || st.Takedown.Applied ||
		st.Deactivated == nil || st.Deactivated.Applied {
		t.Fatalf("active account: %s", r.Body)
	}
	want(t, post(env, "com.atproto.server.deactivateAccount", a.Token, map[string]any{}), 200, "")
	if _, st := subjectStatus(t, env, q); !st.Deactivated.Applied {
		t.Fatal("deactivated not reported")
	}
	want(t, post(env, "com.atproto.server.activateAccount", a.Token, map[string]any{}), 200, "")

	subject := map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": a.DID}
	want(t, post(env, "com.atproto.admin.updateSubjectStatus", adminAuth, map[string]any{"subject": subject,
		"takedown": map[string]any{"applied": true}, "deactivated": map[string]any{"applied": false}}), 400, "InvalidRequest")
	want(t, post(env, "com.atproto.admin.updateSubjectStatus", adminAuth, map[string]any{"subject": subject, "takedown": map[string]any{"applied": true, "ref": "1767323045"}}), 200, "")
	if _, st := subjectStatus(t, env, q); !st.Takedown.Applied || st.Takedown.Ref != "1767323045" {
		t.Fatalf("taken down: %+v", st.Takedown)
	}
	// The reference's refreshSession: 401 AccountTakedown (softDeleted).
	want(t, env.Do("POST", "/xrpc/com.atproto.server.refreshSession", nil, a.Refresh, nil), 401, "AccountTakedown")
	want(t, post(env, "com.atproto.admin.updateSubjectStatus", adminAuth, map[string]any{"subject": subject, "takedown": map[string]any{"applied": false}}), 200, "")
	if r, st := subjectStatus(t, env, q); st.Takedown.Applied || strings.Contains(string(r.Body), "ref") {
		t.Fatalf("reversed: %s", r.Body)
	}
	// Admin deactivation, as the reference's updateSubjectStatus deactivated.
	want(t, post(env, "com.atproto.admin.updateSubjectStatus", adminAuth, map[string]any{"subject": subject, "deactivated": map[string]any{"applied": true}}), 200, "")
	if _, st := subjectStatus(t, env, q); !st.Deactivated.Applied {
		t.Fatal("admin deactivation not reported")
	}

	r, _ = subjectStatus(t, env, url.Values{"did": {"did:plc:nobodyhereatall00000000"}})
	want(t, r, 400, "NotFound")
	r, _ = subjectStatus(t, env, nil)
	want(t, r, 400, "InvalidRequest")
	r, _ = subjectStatus(t, env, url.Values{"blob": {"bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}})
	want(t, r, 400, "InvalidRequest")
	r, _ = subjectStatus(t, env, url.Values{"did": {a.DID.String()}, "blob": {"bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}})
	want(t, r, 400, "NotFound")
}
