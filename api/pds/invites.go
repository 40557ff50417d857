package pds

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
)

// FirstStartCreator marks the invite code made for the first account.
const FirstStartCreator = "first-start"

// newInviteCode returns a code in the reference's shape: host-xxxxx-xxxxx.
func newInviteCode(hostname string) string {
	var b [7]byte
	_, _ = rand.Read(b[:])
	enc := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	return strings.ReplaceAll(hostname, ".", "-") + "-" + enc[:5] + "-" + enc[5:10]
}

// CreateInvites creates n invite codes of uses uses each for forAccount (a
// DID, or "admin"), by the admin.
func (p *PDS) CreateInvites(ctx context.Context, forAccount string, n, uses int) ([]string, error) {
	if uses <= 0 {
		return nil, &Error{Kind: ErrInvalidInput, Msg: "useCount must be positive"}
	}
	if forAccount == "" {
		forAccount = "admin"
	}
	now := p.Now().UTC().Format(time.RFC3339)
	codes := make([]string, n)
	evs := make([]*eventlog.Event, n)
	for i := range n {
		codes[i] = newInviteCode(p.Service.Hostname)
		ev, err := events.New(p.Service.DID(), &events.InviteCreated{Code: codes[i], Available: uses,
			ForAccount: forAccount, CreatedBy: "admin", CreatedAt: now})
		if err != nil {
			return nil, err
		}
		evs[i] = ev
	}
	if _, err := p.commit(ctx, evs...); err != nil {
		return nil, err
	}
	return codes, nil
}

// FirstStartInvite makes sure a newcomer can sign up on a server that
// requires invites and has no account yet: it creates (once) a one-use
// invite code and returns it on every call until an account exists ("" when
// none is needed).
func (p *PDS) FirstStartInvite(ctx context.Context) (string, error) {
	if !p.Service.InviteRequired {
		return "", nil
	}
	if n, err := p.Accounts.Count(ctx, 1); err != nil || n > 0 {
		return "", err
	}
	invites, err := p.Accounts.Invites(ctx)
	if err != nil {
		return "", err
	}
	for _, inv := range invites {
		if inv.CreatedBy == FirstStartCreator && !inv.Disabled && len(inv.UsedBy) < inv.Available {
			return inv.Code, nil
		}
	}
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	enc := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	code := p.Service.Hostname + "-" + enc[:5] + "-" + enc[5:10] + "-" + enc[10:15]
	ev, err := events.New(p.Service.DID(), &events.InviteCreated{Code: code, Available: 1,
		CreatedBy: FirstStartCreator, CreatedAt: p.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		return "", err
	}
	if _, err := p.commit(ctx, ev); err != nil {
		return "", err
	}
	return code, nil
}
