package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/api/agnostic"
	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/identity"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/coder/websocket"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/api/pds/mail/mailtest"
	"github.com/pdslog/pdslog/projections/testenv"
)

var codePattern = regexp.MustCompile(`[A-Z2-7]{5}-[A-Z2-7]{5}`)

// migrationHosts are two pdslog servers and the PLC directory both use.
type migrationHosts struct {
	plc        string
	oldURL     string
	newURL     string
	oldMail    *mailtest.Server
	stopOld    func()
	stopNew    func()
	oldDataDir string
	newDataDir string
}

func startMigrationHosts(t *testing.T) *migrationHosts {
	t.Helper()
	testenv.Slow(t, "two pdslog servers and a PLC directory under Node.js")
	plcSrv := plcserver.Start(t)
	h := &migrationHosts{plc: plcSrv.URL, oldMail: mailtest.StartPlain(t), oldDataDir: t.TempDir(), newDataDir: t.TempDir()}
	common := []string{"--plc-url", plcSrv.URL, "--invite-required=false", "--port", "0", "--admin-password", "migration-admin"}
	oldAddr, _, stopOld := startServe(t, append([]string{"--data-dir", h.oldDataDir, "--email-smtp-url", h.oldMail.URL()}, common...)...)
	newAddr, _, stopNew := startServe(t, append([]string{"--data-dir", h.newDataDir}, common...)...)
	// The public URLs (what DID documents name): localhost and the port.
	public := func(addr string) string { _, port, _ := net.SplitHostPort(addr); return "http://localhost:" + port }
	h.oldURL, h.newURL = public(oldAddr), public(newAddr)
	h.stopOld, h.stopNew = stopOld, stopNew
	return h
}

// goatMigrate is goat's `account migrate` (bluesky-social/goat,
// account_migrate.go), call for call, with its error handling: the client
// whose PDS an account should be able to move to and from.
func goatMigrate(ctx context.Context, oldClient *atclient.APIClient, newHostURL, newHandle, newPassword, newEmail, plcToken string) error {
	did := *oldClient.AccountDID
	didStr := did.String()
	newClient := atclient.NewAPIClient(newHostURL)
	newHostDesc, err := comatproto.ServerDescribeServer(ctx, newClient)
	if err != nil {
		return fmt.Errorf("failed connecting to new host: %w", err)
	}
	newHostDID, err := syntax.ParseDID(newHostDesc.Did)
	if err != nil {
		return err
	}
	expTimestamp := time.Now().Unix() + 60
	createAuthResp, err := comatproto.ServerGetServiceAuth(ctx, oldClient, newHostDID.String(), expTimestamp, "com.atproto.server.createAccount")
	if err != nil {
		return fmt.Errorf("failed getting service auth token from old host: %w", err)
	}
	createParams := comatproto.ServerCreateAccount_Input{Did: &didStr, Handle: newHandle, Password: &newPassword, Email: &newEmail}
	newClient.AccountDID = &did
	newClient.Auth = &atclient.PasswordAuth{Session: atclient.PasswordSessionData{AccountDID: did, AccessToken: createAuthResp.Token}}
	createAccountResp, err := comatproto.ServerCreateAccount(ctx, newClient, &createParams)
	if err != nil {
		return fmt.Errorf("failed creating new account: %w", err)
	}
	if createAccountResp.Did != did.String() {
		return fmt.Errorf("new account DID not a match: %s != %s", createAccountResp.Did, did)
	}
	newClient.Auth = &atclient.PasswordAuth{Session: atclient.PasswordSessionData{AccountDID: did,
		AccessToken: createAccountResp.AccessJwt, RefreshToken: createAccountResp.RefreshJwt}}
	sess, err := comatproto.ServerCreateSession(ctx, newClient, &comatproto.ServerCreateSession_Input{Identifier: did.String(), Password: newPassword})
	if err != nil {
		return fmt.Errorf("failed login to newly created account on new host: %w", err)
	}
	newClient.Auth = &atclient.PasswordAuth{Session: atclient.PasswordSessionData{AccountDID: did, AccessToken: sess.AccessJwt, RefreshToken: sess.RefreshJwt}}

	repoBytes, err := comatproto.SyncGetRepo(ctx, oldClient, did.String(), "")
	if err != nil {
		return fmt.Errorf("failed exporting repo: %w", err)
	}
	if err := comatproto.RepoImportRepo(ctx, newClient, bytes.NewReader(repoBytes)); err != nil {
		return fmt.Errorf("failed importing repo: %w", err)
	}
	prefResp, err := agnostic.ActorGetPreferences(ctx, oldClient)
	if err != nil {
		return fmt.Errorf("failed fetching old preferences: %w", err)
	}
	if err := agnostic.ActorPutPreferences(ctx, newClient, &agnostic.ActorPutPreferences_Input{Preferences: prefResp.Preferences}); err != nil {
		return fmt.Errorf("failed importing preferences: %w", err)
	}
	blobCursor := ""
	for {
		listResp, err := comatproto.SyncListBlobs(ctx, oldClient, blobCursor, did.String(), 100, "")
		if err != nil {
			return fmt.Errorf("failed listing blobs: %w", err)
		}
		for _, blobCID := range listResp.Cids {
			blobBytes, err := comatproto.SyncGetBlob(ctx, oldClient, blobCID, did.String())
			if err != nil {
				return fmt.Errorf("failed downloading blob %s: %w", blobCID, err)
			}
			if _, err := comatproto.RepoUploadBlob(ctx, newClient, bytes.NewReader(blobBytes)); err != nil {
				return fmt.Errorf("failed uploading blob %s: %w", blobCID, err)
			}
		}
		if listResp.Cursor == nil || *listResp.Cursor == "" {
			break
		}
		blobCursor = *listResp.Cursor
	}
	if _, err := comatproto.ServerCheckAccountStatus(ctx, newClient); err != nil {
		return fmt.Errorf("failed checking account status: %w", err)
	}
	credsResp, err := agnostic.IdentityGetRecommendedDidCredentials(ctx, newClient)
	if err != nil {
		return fmt.Errorf("failed fetching new credentials: %w", err)
	}
	credsBytes, err := json.Marshal(credsResp)
	if err != nil {
		return err
	}
	var unsignedOp agnostic.IdentitySignPlcOperation_Input
	if err = json.Unmarshal(credsBytes, &unsignedOp); err != nil {
		return fmt.Errorf("failed parsing PLC op: %w", err)
	}
	unsignedOp.Token = &plcToken
	signedPlcOpResp, err := agnostic.IdentitySignPlcOperation(ctx, oldClient, &unsignedOp)
	if err != nil {
		return fmt.Errorf("failed requesting PLC operation signature: %w", err)
	}
	// (not goat: before the PLC update, activation is refused with the reason)
	if err := comatproto.ServerActivateAccount(ctx, newClient); err == nil || !strings.Contains(err.Error(), "DID document") {
		return fmt.Errorf("activation before the PLC update: %v, want a refusal naming the DID document", err)
	}
	if err := agnostic.IdentitySubmitPlcOperation(ctx, newClient, &agnostic.IdentitySubmitPlcOperation_Input{Operation: signedPlcOpResp.Operation}); err != nil {
		return fmt.Errorf("failed submitting PLC operation: %w", err)
	}
	if err := comatproto.ServerActivateAccount(ctx, newClient); err != nil {
		return fmt.Errorf("failed activating new host: %w", err)
	}
	if err := comatproto.ServerDeactivateAccount(ctx, oldClient, &comatproto.ServerDeactivateAccount_Input{}); err != nil {
		return fmt.Errorf("failed deactivating old host: %w", err)
	}
	return nil
}

// An account moves from one pdslog to another with goat's call sequence,
// through a real PLC directory: every record, blob and preference arrives;
// the PLC document now names the new host and key; the new host's firehose
// announces the account; the old host stops serving it.
func TestMigrationBetweenTwoServers(t *testing.T) {
	h := startMigrationHosts(t)
	ctx := t.Context()
	resp, err := http.Post(h.oldURL+"/xrpc/com.atproto.server.createAccount", "application/json",
		strings.NewReader(`{"handle":"mover.test","email":"mover@example.com","password":"mover-password-1"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("createAccount: %v %v", err, resp)
	}
	resp.Body.Close()
	old, err := atclient.LoginWithPasswordHost(ctx, h.oldURL, "mover.test", "mover-password-1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	did := *old.AccountDID
	// The repo: posts, a profile, an image post (its blob), preferences.
	var blob struct {
		Blob map[string]any `json:"blob"`
	}
	img := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("pixels"), 500)...)
	up, err := comatproto.RepoUploadBlob(ctx, old, bytes.NewReader(img))
	if err != nil {
		t.Fatalf("uploadBlob: %v", err)
	}
	if b, err := json.Marshal(map[string]any{"blob": up.Blob}); err != nil || json.Unmarshal(b, &blob) != nil {
		t.Fatalf("blob ref: %v", err)
	}
	want := map[string]string{} // path -> cid
	write := func(coll string, rec map[string]any) {
		var out struct{ URI, CID string }
		in := map[string]any{"repo": did.String(), "collection": coll, "record": rec}
		if coll == "app.bsky.actor.profile" {
			in["rkey"] = "self"
		}
		if err := old.Post(ctx, "com.atproto.repo.createRecord", in, &out); err != nil {
			t.Fatalf("createRecord: %v", err)
		}
		u, _ := syntax.ParseATURI(out.URI)
		want[u.Collection().String()+"/"+u.RecordKey().String()] = out.CID
	}
	for i := range 250 { // more than one import commit
		write("app.bsky.feed.post", map[string]any{"text": fmt.Sprintf("post %d", i), "createdAt": "2026-12-01T00:00:00.000Z"})
	}
	write("app.bsky.feed.post", map[string]any{"text": "with an image", "createdAt": "2026-12-01T00:00:00.000Z",
		"embed": map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "", "image": blob.Blob}}}})
	write("app.bsky.actor.profile", map[string]any{"displayName": "Mover"})
	prefs := map[string]any{"preferences": []any{map[string]any{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true}}}
	if err := old.Post(ctx, "app.bsky.actor.putPreferences", prefs, nil); err != nil {
		t.Fatalf("putPreferences: %v", err)
	}
	// The PLC code goes to the old host's mail.
	if err := old.Post(ctx, "com.atproto.identity.requestPlcOperationSignature", nil, nil); err != nil {
		t.Fatalf("requestPlcOperationSignature: %v", err)
	}
	code := codePattern.FindString(h.oldMail.Wait("mover@example.com", "PLC").Text)

	if err := goatMigrate(ctx, old, h.newURL, "mover2.test", "new-password-2", "mover@example.com", code); err != nil {
		t.Fatal(err)
	}

	// The PLC document names the new host, its key and handle.
	data, err := (&plc.Client{URL: h.plc}).GetData(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	if data.Services["atproto_pds"].Endpoint != h.newURL || !slices.Contains(data.AlsoKnownAs, "at://mover2.test") {
		t.Fatalf("PLC data after the move: %+v", data)
	}
	// Every record arrived with its CID, in a repo that verifies under the
	// new key; the blob is there; the preferences too.
	car, err := comatproto.SyncGetRepo(ctx, atclient.NewAPIClient(h.newURL), did.String(), "")
	if err != nil {
		t.Fatal(err)
	}
	commit, repo, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(car))
	if err != nil {
		t.Fatalf("the new host's repo does not load: %v", err)
	}
	doc, err := (&plc.Client{URL: h.plc}).Resolve(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	ident := identity.ParseIdentity(doc)
	pub, err := ident.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := commit.VerifySignature(pub); err != nil {
		t.Fatalf("the new head does not verify under the key the PLC document names: %v", err)
	}
	got := map[string]string{}
	err = repo.MST.Walk(func(k []byte, v cidT) error {
		got[string(k)] = v.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("new repo has %d records, the old %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("record %s: %s on the new host, %s on the old", k, got[k], v)
		}
	}
	nc, err := atclient.LoginWithPasswordHost(ctx, h.newURL, did.String(), "new-password-2", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st comatproto.ServerCheckAccountStatus_Output
	if err := nc.Get(ctx, "com.atproto.server.checkAccountStatus", nil, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Activated || !st.ValidDid || st.IndexedRecords != int64(len(want)) || st.ExpectedBlobs != 1 || st.ImportedBlobs != 1 {
		t.Fatalf("checkAccountStatus on the new host: %+v", st)
	}
	var np struct{ Preferences []map[string]any }
	if err := nc.Get(ctx, "app.bsky.actor.getPreferences", nil, &np); err != nil || len(np.Preferences) != 1 || np.Preferences[0]["enabled"] != true {
		t.Fatalf("preferences on the new host: %+v %v", np, err)
	}
	bb, err := comatproto.SyncGetBlob(ctx, atclient.NewAPIClient(h.newURL), blob.Blob["ref"].(map[string]any)["$link"].(string), did.String())
	if err != nil || !bytes.Equal(bb, img) {
		t.Fatalf("blob on the new host: %d bytes, %v", len(bb), err)
	}
	// The new host writes on from the imported head.
	var w struct{ CID string }
	if err := nc.Post(ctx, "com.atproto.repo.createRecord", map[string]any{"repo": did.String(), "collection": "app.bsky.feed.post",
		"record": map[string]any{"text": "from the new home", "createdAt": "2026-12-02T00:00:00.000Z"}}, &w); err != nil {
		t.Fatalf("write on the new host: %v", err)
	}
	// The old host: deactivated, refuses writes, answers reads as the
	// reference does for a deactivated account.
	var os comatproto.SyncGetRepoStatus_Output
	if err := atclient.NewAPIClient(h.oldURL).Get(ctx, "com.atproto.sync.getRepoStatus", map[string]any{"did": did.String()}, &os); err != nil {
		t.Fatal(err)
	}
	if os.Active || os.Status == nil || *os.Status != "deactivated" {
		t.Fatalf("old host's repo status: %+v", os)
	}
	if err := old.Post(ctx, "com.atproto.repo.createRecord", map[string]any{"repo": did.String(), "collection": "app.bsky.feed.post",
		"record": map[string]any{"text": "left behind", "createdAt": "2026-12-02T00:00:00.000Z"}}, nil); err == nil {
		t.Fatal("the old host took a write after the move")
	}
	// And the account cannot be reactivated on the old host: its identity
	// points elsewhere now.
	if err := old.Post(ctx, "com.atproto.server.activateAccount", nil, nil); err == nil {
		t.Fatal("the old host reactivated an account that moved away")
	}
	checkFirehoseAfterMigration(t, h.newURL, did)
}

type cidT = cid.Cid

// checkFirehoseAfterMigration reads the new host's firehose from the start:
// the account's events end with the activation — #account active,
// #identity, #sync of the head — after the import's #sync, and nothing of
// the account is out of order.
func checkFirehoseAfterMigration(t *testing.T, host string, did syntax.DID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(host, "http://", "ws://", 1)+"/xrpc/com.atproto.sync.subscribeRepos?cursor=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(4 << 20)
	head, err := comatproto.SyncGetLatestCommit(ctx, atclient.NewAPIClient(host), did.String())
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var lastSeq int64
	for {
		_, frame, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("firehose ended before the write after the move (saw %v): %v", kinds, err)
		}
		var ev events.XRPCStreamEvent
		if err := ev.Deserialize(bytes.NewReader(frame)); err != nil {
			t.Fatal(err)
		}
		var seq int64
		switch {
		case ev.RepoCommit != nil && ev.RepoCommit.Repo == did.String():
			seq = ev.RepoCommit.Seq
			kinds = append(kinds, "commit")
			if ev.RepoCommit.Commit.String() == head.Cid {
				if n := len(kinds); n < 5 || !slices.Equal(kinds[n-4:n-1], []string{"account:active", "identity", "sync"}) {
					t.Fatalf("the account's events end %v: want the activation's #account, #identity, #sync before the next commit", kinds)
				}
				if !slices.Contains(kinds, "sync") || !slices.Contains(kinds, "account:deactivated") {
					t.Fatalf("no import #sync or deactivated #account in %v", kinds)
				}
				return
			}
		case ev.RepoSync != nil && ev.RepoSync.Did == did.String():
			seq = ev.RepoSync.Seq
			kinds = append(kinds, "sync")
		case ev.RepoIdentity != nil && ev.RepoIdentity.Did == did.String():
			seq = ev.RepoIdentity.Seq
			kinds = append(kinds, "identity")
		case ev.RepoAccount != nil && ev.RepoAccount.Did == did.String():
			seq = ev.RepoAccount.Seq
			st := "active"
			if !ev.RepoAccount.Active && ev.RepoAccount.Status != nil {
				st = *ev.RepoAccount.Status
			}
			kinds = append(kinds, "account:"+st)
		default:
			continue
		}
		if seq <= lastSeq {
			t.Fatalf("seq %d after %d", seq, lastSeq)
		}
		lastSeq = seq
	}
}
