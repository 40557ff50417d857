package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// startServe runs `pdslog serve` in-process on a real listener.
func startServe(t *testing.T, args ...string) (addr string, out *eventlogtest.SyncBuffer, stop func()) {
	t.Helper()
	return startServeWith(t, nil, args...)
}

// startServeWith is startServe with the command adjusted by configure
// before it runs (test-only fields such as logFS).
func startServeWith(t *testing.T, configure func(*serveCommand), args ...string) (addr string, out *eventlogtest.SyncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	out = &eventlogtest.SyncBuffer{}
	cmd := &serveCommand{stdout: out, stderr: io.Discard, ready: ready}
	if configure != nil {
		configure(cmd)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.run(ctx, append([]string{"--port", "0"}, args...)) }()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v", err)
	}
	return addr, out, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

var inviteRE = regexp.MustCompile(`(?m)^\s+(localhost-[a-z2-7-]+)$`)

// A newcomer runs `pdslog serve`, reads the printed invite code, signs up
// (the DID goes to a real PLC directory), logs in and posts.
func TestServeSignupEndToEnd(t *testing.T) {
	plcSrv := plcserver.Start(t)
	dir := t.TempDir()
	addr, out, stop := startServe(t, "--data-dir", dir, "--plc-url", plcSrv.URL)
	m := inviteRE.FindStringSubmatch(out.String())
	if m == nil {
		stop()
		t.Fatalf("no invite code printed: %q", out.String())
	}
	code := m[1]
	post := func(path, token string, body any) (int, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", "http://"+addr+"/xrpc/"+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	st, acct := post("com.atproto.server.createAccount", "", map[string]any{"handle": "alice.test", "email": "a@example.com", "password": "hunter22hunter", "inviteCode": code})
	if st != 200 {
		stop()
		t.Fatalf("createAccount: %d %v", st, acct)
	}
	st, sess := post("com.atproto.server.createSession", "", map[string]any{"identifier": "alice.test", "password": "hunter22hunter"})
	if st != 200 {
		stop()
		t.Fatalf("createSession: %d %v", st, sess)
	}
	st, rec := post("com.atproto.repo.createRecord", sess["accessJwt"].(string), map[string]any{"repo": acct["did"], "collection": "app.bsky.feed.post",
		"record": map[string]any{"text": "hello from pdslog", "createdAt": "2026-11-26T12:00:00.000Z"}})
	if st != 200 || rec["validationStatus"] != "valid" {
		stop()
		t.Fatalf("createRecord: %d %v", st, rec)
	}
	// The invite is spent.
	if st, _ := post("com.atproto.server.createAccount", "", map[string]any{"handle": "bob.test", "email": "b@example.com", "password": "hunter22hunter", "inviteCode": code}); st != 400 {
		t.Errorf("second signup with the first-start invite: %d", st)
	}
	stop()
	// After a restart with an account present, no invite is printed.
	_, out2, stop2 := startServe(t, "--data-dir", dir, "--plc-url", plcSrv.URL)
	stop2()
	if strings.Contains(out2.String(), "Invite code") {
		t.Fatalf("invite printed although an account exists: %q", out2.String())
	}
}

func TestFirstStartInviteOnlyOnce(t *testing.T) {
	dir := t.TempDir()
	_, out1, stop1 := startServe(t, "--data-dir", dir)
	stop1()
	_, out2, stop2 := startServe(t, "--data-dir", dir)
	stop2()
	a, b := inviteRE.FindStringSubmatch(out1.String()), inviteRE.FindStringSubmatch(out2.String())
	if a == nil || b == nil || a[1] != b[1] {
		t.Fatalf("first-start invite not stable: %q vs %q", out1.String(), out2.String())
	}
	_, out3, stop3 := startServe(t, "--data-dir", t.TempDir(), "--invite-required=false")
	stop3()
	if strings.Contains(out3.String(), "Invite code") {
		t.Fatal("invite printed with invites not required")
	}
}
