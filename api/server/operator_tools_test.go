package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/apitest"
)

// The operator tools of the reference distribution work unchanged against
// pdslog: each call they make, made as they make it, through HTTP.

// curl is one call as pdsadmin's scripts make it (bluesky-social/pds
// pdsadmin/*.sh): curl --fail --silent --show-error [--request POST
// --header "Content-Type: application/json"] [--user admin:PASSWORD]
// [--data BODY] URL. With --fail, a status of 400 or more is a failure.
func curl(t *testing.T, env *apitest.Env, method, path string, user bool, data string) ([]byte, int) {
	t.Helper()
	var body io.Reader
	if data != "" {
		body = strings.NewReader(data)
	}
	req, err := http.NewRequest(method, env.Server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if user {
		req.SetBasicAuth("admin", apitest.AdminPassword)
	}
	req.Header.Set("User-Agent", "curl/8.5.0")
	req.Header.Set("Accept", "*/*")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return out, resp.StatusCode
}

func mustCurl(t *testing.T, env *apitest.Env, method, path string, user bool, data string) []byte {
	t.Helper()
	out, st := curl(t, env, method, path, user, data)
	if st >= 400 {
		t.Fatalf("curl --fail %s %s: %d %s", method, path, st, out)
	}
	return out
}

// pdsadminPassword is pdsadmin's: openssl rand -base64 30 | tr -d "=+/" |
// cut -c1-24.
func pdsadminPassword() string {
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	s := strings.NewReplacer("=", "", "+", "", "/", "").Replace(fmt.Sprintf("%x", b))
	return s[:24]
}

// TestPdsadminCalls: pdsadmin's account list, create, delete, takedown,
// untakedown and reset-password, and create-invite-code (request-crawl
// talks to relays, not to the PDS).
func TestPdsadminCalls(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()

	// create-invite-code
	var inv struct{ Code string }
	if err := json.Unmarshal(mustCurl(t, env, "POST", "/xrpc/com.atproto.server.createInviteCode", true, `{"useCount": 1}`), &inv); err != nil || inv.Code == "" {
		t.Fatalf("create-invite-code: %v %+v", err, inv)
	}

	// account create EMAIL HANDLE
	create := func(email, handle string) string {
		t.Helper()
		var code struct{ Code string }
		_ = json.Unmarshal(mustCurl(t, env, "POST", "/xrpc/com.atproto.server.createInviteCode", true, `{"useCount": 1}`), &code)
		password := pdsadminPassword()
		out, _ := curl(t, env, "POST", "/xrpc/com.atproto.server.createAccount", false,
			fmt.Sprintf(`{"email":"%s", "handle":"%s", "password":"%s", "inviteCode":"%s"}`, email, handle, password, code.Code))
		var res struct{ DID, Message string }
		_ = json.Unmarshal(out, &res)
		if !strings.HasPrefix(res.DID, "did:") {
			t.Fatalf("account create: ERROR: %s (%s)", res.Message, out)
		}
		return res.DID
	}
	alice := create("alice@example.com", "alice.test")
	bob := create("bob@example.com", "bob.test")

	// account list: listRepos?limit=100, then getAccountInfo of each DID;
	// jq '.[] | [.handle, .email, .did] | @tsv'
	var repos struct{ Repos []struct{ DID string } }
	if err := json.Unmarshal(mustCurl(t, env, "GET", "/xrpc/com.atproto.sync.listRepos?limit=100", false, ""), &repos); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range repos.Repos {
		var item struct{ Handle, Email, DID string }
		if err := json.Unmarshal(mustCurl(t, env, "GET", "/xrpc/com.atproto.admin.getAccountInfo?did="+r.DID, true, ""), &item); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, item.Handle+"\t"+item.Email+"\t"+item.DID)
	}
	if got := strings.Join(rows, "\n"); !strings.Contains(got, "alice.test\talice@example.com\t"+alice) || !strings.Contains(got, "bob.test\tbob@example.com\t"+bob) {
		t.Fatalf("account list:\n%s", got)
	}

	// account takedown DID: ref is $(date +%s)
	ref := fmt.Sprint(time.Now().Unix())
	mustCurl(t, env, "POST", "/xrpc/com.atproto.admin.updateSubjectStatus", true, fmt.Sprintf(`
    {
      "subject": {
        "$type": "com.atproto.admin.defs#repoRef",
        "did": "%s"
      },
      "takedown": {
        "applied": true,
        "ref": "%s"
      }
    }`, bob, ref))
	var st struct {
		Takedown struct {
			Applied bool
			Ref     string
		}
	}
	_ = json.Unmarshal(mustCurl(t, env, "GET", "/xrpc/com.atproto.admin.getSubjectStatus?did="+bob, true, ""), &st)
	if !st.Takedown.Applied || st.Takedown.Ref != ref {
		t.Fatalf("after takedown: %+v", st)
	}
	// account untakedown DID
	mustCurl(t, env, "POST", "/xrpc/com.atproto.admin.updateSubjectStatus", true, fmt.Sprintf(`
  {
    "subject": {
      "$type": "com.atproto.admin.defs#repoRef",
      "did": "%s"
    },
    "takedown": {
      "applied": false
    }
  }`, bob))
	_ = json.Unmarshal(mustCurl(t, env, "GET", "/xrpc/com.atproto.admin.getSubjectStatus?did="+bob, true, ""), &st)
	if st.Takedown.Applied {
		t.Fatalf("after untakedown: %+v", st)
	}

	// account reset-password DID
	password := pdsadminPassword()
	mustCurl(t, env, "POST", "/xrpc/com.atproto.admin.updateAccountPassword", true, fmt.Sprintf(`{ "did": "%s", "password": "%s" }`, bob, password))
	if r := login(env, bob, password); r.Status != 200 {
		t.Fatalf("login with the reset password: %d %s", r.Status, r.Body)
	}

	// account delete DID
	mustCurl(t, env, "POST", "/xrpc/com.atproto.admin.deleteAccount", true, fmt.Sprintf(`{"did": "%s"}`, alice))
	if _, code := curl(t, env, "GET", "/xrpc/com.atproto.admin.getAccountInfo?did="+alice, true, ""); code != 400 {
		t.Fatalf("deleted account: getAccountInfo %d", code)
	}
	// Without the admin password, --fail fails.
	if _, code := curl(t, env, "POST", "/xrpc/com.atproto.admin.deleteAccount", false, fmt.Sprintf(`{"did": "%s"}`, bob)); code != 401 {
		t.Fatalf("delete without the admin: %d", code)
	}
}

// TestGoatPDSAdminCalls: goat's `pds admin` commands (bluesky-social/goat
// pds_admin.go), each through indigo's generated client as goat calls it:
// create-invites, account create, list, info, update --email/--handle,
// reset-password, takedown (and --reverse), blob status and purge (and
// --reverse), delete.
func TestGoatPDSAdminCalls(t *testing.T) {
	env := apitest.New(t)
	env.StartPLC()
	ctx := context.Background()
	admin := atclient.NewAdminClient(env.Server.URL, apitest.AdminPassword)

	// create-invites --count 2 --uses 1
	var codes []string
	for range 2 {
		resp, err := comatproto.ServerCreateInviteCode(ctx, admin, &comatproto.ServerCreateInviteCode_Input{UseCount: 1})
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.Code)
	}
	// account create --handle --password --email (goat's createAccount)
	newAccount := func(handle, code string) *comatproto.ServerCreateAccount_Output {
		t.Helper()
		password, email := "goat-"+handle, strings.TrimSuffix(handle, ".test")+"@example.com"
		out, err := comatproto.ServerCreateAccount(ctx, atclient.NewAPIClient(env.Server.URL),
			&comatproto.ServerCreateAccount_Input{Handle: handle, Password: &password, Email: &email, InviteCode: &code})
		if err != nil {
			t.Fatalf("account create %s: %v", handle, err)
		}
		return out
	}
	carol := newAccount("carol.test", codes[0])
	dave := newAccount("dave.test", codes[1])

	// account list
	seen := map[string]string{}
	for cursor := ""; ; {
		resp, err := comatproto.SyncListRepos(ctx, admin, cursor, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Repos {
			status := "unknown"
			if r.Active != nil && *r.Active {
				status = "active"
			} else if r.Status != nil {
				status = *r.Status
			}
			seen[r.Did] = status
		}
		if resp.Cursor == nil || *resp.Cursor == "" {
			break
		}
		cursor = *resp.Cursor
	}
	if seen[carol.Did] != "active" || seen[dave.Did] != "active" {
		t.Fatalf("account list: %v", seen)
	}

	// account info
	info, err := comatproto.AdminGetAccountInfo(ctx, admin, carol.Did)
	if err != nil || info.Handle != "carol.test" || info.Email == nil || *info.Email != "carol@example.com" || info.InvitedBy == nil || info.InvitedBy.Code != codes[0] {
		t.Fatalf("account info: %+v %v", info, err)
	}

	// account update --email --handle
	if err := comatproto.AdminUpdateAccountEmail(ctx, admin, &comatproto.AdminUpdateAccountEmail_Input{Account: carol.Did, Email: "caroline@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := comatproto.AdminUpdateAccountHandle(ctx, admin, &comatproto.AdminUpdateAccountHandle_Input{Did: carol.Did, Handle: "caroline.test"}); err != nil {
		t.Fatal(err)
	}
	if info, err := comatproto.AdminGetAccountInfo(ctx, admin, carol.Did); err != nil || info.Handle != "caroline.test" || *info.Email != "caroline@example.com" {
		t.Fatalf("after update: %+v %v", info, err)
	}

	// account reset-password
	password := rand.Text()
	if err := comatproto.AdminUpdateAccountPassword(ctx, admin, &comatproto.AdminUpdateAccountPassword_Input{Did: dave.Did, Password: password}); err != nil {
		t.Fatal(err)
	}
	if r := login(env, "dave.test", password); r.Status != 200 {
		t.Fatalf("login with goat's new password: %d %s", r.Status, r.Body)
	}

	// account takedown, and --reverse
	for _, applied := range []bool{true, false} {
		if _, err := comatproto.AdminUpdateSubjectStatus(ctx, admin, &comatproto.AdminUpdateSubjectStatus_Input{
			Subject:  &comatproto.AdminUpdateSubjectStatus_Input_Subject{AdminDefs_RepoRef: &comatproto.AdminDefs_RepoRef{LexiconTypeID: "com.atproto.admin.defs#repoRef", Did: dave.Did}},
			Takedown: &comatproto.AdminDefs_StatusAttr{Applied: applied},
		}); err != nil {
			t.Fatalf("takedown %v: %v", applied, err)
		}
		st, err := comatproto.AdminGetSubjectStatus(ctx, admin, "", dave.Did, "")
		if err != nil || st.Takedown == nil || st.Takedown.Applied != applied || st.Subject.AdminDefs_RepoRef == nil || st.Deactivated == nil {
			t.Fatalf("status after takedown %v: %+v %v", applied, st, err)
		}
	}

	// blob status / purge (and --reverse): a blob carol uploaded
	user := atclient.NewAPIClient(env.Server.URL)
	sess := login(env, "caroline.test", "goat-carol.test")
	var tokens struct{ AccessJwt, RefreshJwt string }
	sess.JSON(t, &tokens)
	user.Auth = &atclient.PasswordAuth{Session: atclient.PasswordSessionData{AccountDID: syntax.DID(carol.Did), AccessToken: tokens.AccessJwt, RefreshToken: tokens.RefreshJwt}}
	up, err := comatproto.RepoUploadBlob(ctx, user, bytes.NewReader([]byte("goat blob bytes")))
	if err != nil {
		t.Fatal(err)
	}
	blobCID := up.Blob.Ref.String()
	for _, applied := range []bool{true, false} {
		if _, err := comatproto.AdminUpdateSubjectStatus(ctx, admin, &comatproto.AdminUpdateSubjectStatus_Input{
			Subject: &comatproto.AdminUpdateSubjectStatus_Input_Subject{AdminDefs_RepoBlobRef: &comatproto.AdminDefs_RepoBlobRef{
				LexiconTypeID: "com.atproto.admin.defs#repoBlobRef", Did: carol.Did, Cid: blobCID}},
			Takedown: &comatproto.AdminDefs_StatusAttr{Applied: applied},
		}); err != nil {
			t.Fatalf("blob purge %v: %v", applied, err)
		}
		st, err := comatproto.AdminGetSubjectStatus(ctx, admin, blobCID, carol.Did, "")
		if err != nil || st.Takedown == nil || st.Takedown.Applied != applied || st.Subject.AdminDefs_RepoBlobRef == nil || st.Subject.AdminDefs_RepoBlobRef.Cid != blobCID {
			t.Fatalf("blob status after purge %v: %+v %v", applied, st, err)
		}
	}

	// account delete
	if err := comatproto.AdminDeleteAccount(ctx, admin, &comatproto.AdminDeleteAccount_Input{Did: dave.Did}); err != nil {
		t.Fatal(err)
	}
	if _, err := comatproto.AdminGetAccountInfo(ctx, admin, dave.Did); err == nil {
		t.Fatal("a deleted account still has info")
	}
	// A wrong password is refused.
	if _, err := comatproto.AdminGetAccountInfo(ctx, atclient.NewAdminClient(env.Server.URL, "wrong"), carol.Did); err == nil {
		t.Fatal("wrong admin password accepted")
	}
}
