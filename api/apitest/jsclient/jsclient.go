package jsclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/projections/testenv"
	"github.com/pdslog/pdslog/projections/testenv/npm"
)

// DefaultTimeout bounds one run of the script: generous, for a loaded
// 2-core CI machine under -race (a run takes a few seconds).
const DefaultTimeout = 2 * time.Minute

// Options are the account the script signs up and what else it may use.
// The zero value is a random js-XXXXXXXX.test account.
type Options struct {
	Handle, Email, Password string
	// JWTSecret is the server's JWT secret (serve --jwt-secret); with it the
	// script also re-signs an access token as expired, to check that the
	// client refreshes the session and retries.
	JWTSecret string
	// MailInbox, if set, is the URL of the test SMTP server's inbox
	// (mailtest.Server.Inbox): the script then walks the emailed-code
	// flows (confirm email, reset password, email sign-in code).
	MailInbox string
	// MentionHandle and MentionDID, if set, are a handle hosted elsewhere
	// and the DID it resolves to: the script posts a mention of it (step
	// post.mention) and checks the facet.
	MentionHandle, MentionDID string
	// Timeout bounds the run (default DefaultTimeout).
	Timeout time.Duration
}

// Step is one line of the script's output.
type Step struct {
	Name string `json:"step"`
	OK   bool   `json:"ok"`
	// Details is what the step saw (ok steps); Error why it failed, and
	// Printed what the library printed on the console meanwhile.
	Details json.RawMessage `json:"details,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
	Printed json.RawMessage `json:"printed,omitempty"`
}

// Decode unmarshals the step's details into v.
func (s Step) Decode(v any) error {
	if err := json.Unmarshal(s.Details, v); err != nil {
		return fmt.Errorf("jsclient: step %s details: %w", s.Name, err)
	}
	return nil
}

// Find returns the step called name.
func Find(steps []Step, name string) (Step, bool) {
	for _, s := range steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// Result is a finished run of the script.
type Result struct {
	Steps  []Step
	Stdout string
	Stderr string
	// Err is why the run failed as a whole: a non-zero exit, a timeout, or
	// an output line that is not a step. Nil when the script exited 0.
	Err error
}

// Run runs the script against the PDS at pdsURL, signing up with
// inviteCode, and returns its steps. It fails t if the script cannot be
// run, exits non-zero, writes anything on stderr or prints a line that is
// not a step, or if any step failed; the caller checks which steps ran and
// what they saw.
func Run(t testing.TB, pdsURL, inviteCode string, opts Options) []Step {
	t.Helper()
	testenv.Slow(t, "runs the TypeScript client under Node.js")
	r, err := Exec(t.Context(), pdsURL, inviteCode, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.Err != nil || r.Stderr != "" {
		t.Errorf("jsclient: client.mjs: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}
	for _, s := range r.Steps {
		if !s.OK {
			t.Errorf("jsclient: step %s failed: %s (printed: %s)", s.Name, s.Error, s.Printed)
		}
	}
	return r.Steps
}

// Exec runs the script (installing its packages first if need be). The
// error is for a script that could not be run at all; how the run went is
// in the Result.
func Exec(ctx context.Context, pdsURL, inviteCode string, opts Options) (*Result, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	if err := npm.Install(dir); err != nil {
		return nil, fmt.Errorf("jsclient: %w", err)
	}
	node, err := npm.Tool("PDSLOG_NODE", "node")
	if err != nil {
		return nil, fmt.Errorf("jsclient: the @atproto/api tests run client.mjs under Node.js: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PDSLOG_PDS_URL="+pdsURL, "PDSLOG_INVITE_CODE="+inviteCode,
		"PDSLOG_HANDLE="+opts.Handle, "PDSLOG_EMAIL="+opts.Email, "PDSLOG_PASSWORD="+opts.Password,
		"PDSLOG_JWT_SECRET="+opts.JWTSecret, "PDSLOG_MAIL_INBOX="+opts.MailInbox,
		"PDSLOG_MENTION_HANDLE="+opts.MentionHandle, "PDSLOG_MENTION_DID="+opts.MentionDID)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	r := &Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ctx.Err() != nil {
		runErr = fmt.Errorf("jsclient: no result after %v: %w", timeout, ctx.Err())
	} else if runErr != nil {
		runErr = fmt.Errorf("jsclient: client.mjs: %w", runErr)
	}
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var s Step
		if err := json.Unmarshal(line, &s); err != nil || s.Name == "" {
			runErr = errors.Join(runErr, fmt.Errorf("jsclient: not a step: %q", line))
			continue
		}
		r.Steps = append(r.Steps, s)
	}
	if err := sc.Err(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("jsclient: reading output: %w", err))
	}
	r.Err = runErr
	return r, nil
}

// Dir is the directory holding client.mjs, package.json and node_modules:
// $PDSLOG_JSCLIENT_DIR, or this source file's directory.
func Dir() (string, error) {
	dir, err := npm.PackageDir("PDSLOG_JSCLIENT_DIR", "client.mjs")
	if err != nil {
		return "", fmt.Errorf("jsclient: %w", err)
	}
	return dir, nil
}
