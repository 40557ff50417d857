package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pdslog/pdslog/api/server"
	"github.com/pdslog/pdslog/eventlog/events"
)

// firstStartCreator marks the invite code serve makes for the first account.
const firstStartCreator = "first-start"

// firstStartInvite makes sure a newcomer can sign up on a server that
// requires invites and has no account yet: it creates (once) a one-use
// invite code and prints it on every start until an account exists.
func firstStartInvite(ctx context.Context, d *dataDir, svc server.Service, out io.Writer) error {
	if !svc.InviteRequired {
		return nil
	}
	if n, err := d.accounts.Count(ctx, 1); err != nil || n > 0 {
		return err
	}
	invites, err := d.accounts.Invites(ctx)
	if err != nil {
		return err
	}
	code := ""
	for _, inv := range invites {
		if inv.CreatedBy == firstStartCreator && !inv.Disabled && len(inv.UsedBy) < inv.Available {
			code = inv.Code
		}
	}
	if code == "" {
		var b [10]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		enc := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
		code = svc.Hostname + "-" + enc[:5] + "-" + enc[5:10] + "-" + enc[10:15]
		ev, err := events.New(svc.DID(), &events.InviteCreated{Code: code, Available: 1,
			CreatedBy: firstStartCreator, CreatedAt: time.Now().UTC().Format(time.RFC3339)})
		if err != nil {
			return err
		}
		seq, err := d.log.Append(ctx, ev)
		if err != nil {
			return err
		}
		if err := d.runner.CatchUp(ctx, seq); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nNo account exists yet. Invite code for the first account (single use):\n\n    %s\n\n", code)
	return nil
}
