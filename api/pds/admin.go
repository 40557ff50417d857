package pds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds/mail"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/records"
)

// The admin API's write side (com.atproto.admin.*): takedowns of accounts
// and records with the moderator's ref, the account's invite policy, and
// the operator's changes of an account's handle, email and password.

// ErrRecordNotFound: the record named does not exist (or is not served).
var ErrRecordNotFound = errors.New("pds: record not found")

// takedownRef is the ref a takedown gets when the moderator gave none: the
// time, as the reference's new Date().toISOString().
func (p *PDS) takedownRef(ref string) string {
	if ref != "" {
		return ref
	}
	return p.Now().UTC().Format("2006-01-02T15:04:05.000Z")
}

// TakedownAccount takes did's account down or reverses the takedown, as
// the reference's takedownAccount: the ref is kept (account.takedown), the
// #account event tells relays when the status changes, and a takedown ends
// every session. A takedown of a taken-down account only replaces its ref.
func (p *PDS) TakedownAccount(ctx context.Context, did syntax.DID, applied bool, ref string) error {
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.account(ctx, did)
	if err != nil {
		return err
	}
	taken := a.Status == StatusTakendown
	if !applied && !taken && a.TakedownRef == "" {
		return nil
	}
	t := &events.AccountTakedown{Applied: applied}
	if applied {
		t.Ref = p.takedownRef(ref)
	}
	evs := []*eventlog.Event{events.Must(did, t)}
	switch {
	case applied && !taken:
		evs = append(evs, &eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: false, Status: StatusTakendown}},
			events.Must(did, &events.SessionRevoked{Reason: "takedown"}))
	case !applied && taken:
		evs = append(evs, &eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: true}})
	}
	_, err = p.commit(ctx, evs...)
	return err
}

// TakedownRecord takes the record at uri down (no longer served by
// getRecord and listRecords; it stays in the repo and on the firehose) or
// reverses that. A record the repo does not hold is left as it is, as the
// reference does.
func (p *PDS) TakedownRecord(ctx context.Context, uri syntax.ATURI, applied bool, ref string) error {
	did, coll, rkey, err := recordURI(uri)
	if err != nil {
		return err
	}
	unlock := p.Lock(did)
	defer unlock()
	if _, err := p.account(ctx, did); err != nil {
		return err
	}
	if _, err := p.Records.Get(ctx, did, coll, rkey); errors.Is(err, records.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	t := &events.RecordTakedown{Collection: coll.String(), RKey: rkey.String(), Applied: applied}
	if applied {
		t.Ref = p.takedownRef(ref)
	}
	_, err = p.commit(ctx, events.Must(did, t))
	return err
}

// RecordStatus is a record's moderation state.
type RecordStatus struct {
	CID         string
	TakenDown   bool
	TakedownRef string
}

// RecordTakedownStatus returns the state of the record at uri, or
// ErrRecordNotFound.
func (p *PDS) RecordTakedownStatus(ctx context.Context, uri syntax.ATURI) (*RecordStatus, error) {
	did, coll, rkey, err := recordURI(uri)
	if err != nil {
		return nil, err
	}
	rec, err := p.Records.Get(ctx, did, coll, rkey)
	if errors.Is(err, records.ErrNotFound) {
		return nil, &Error{Kind: ErrRecordNotFound, Msg: "Subject not found"}
	}
	if err != nil {
		return nil, err
	}
	ref, down, err := p.Records.Takedown(ctx, did, coll, rkey)
	if err != nil {
		return nil, err
	}
	return &RecordStatus{CID: rec.CID.String(), TakenDown: down, TakedownRef: ref}, nil
}

func recordURI(uri syntax.ATURI) (syntax.DID, syntax.NSID, syntax.RecordKey, error) {
	did, err := uri.Authority().AsDID()
	coll, rkey := uri.Collection(), uri.RecordKey()
	if err != nil || coll == "" || rkey == "" {
		return "", "", "", &Error{Kind: ErrInvalidInput, Msg: fmt.Sprintf("Invalid record uri: %s (at://DID/collection/rkey)", uri)}
	}
	return did, coll, rkey, nil
}

// SetAccountInvitesDisabled turns did's own invite codes off or on
// (admin.disableAccountInvites / enableAccountInvites).
func (p *PDS) SetAccountInvitesDisabled(ctx context.Context, did syntax.DID, disabled bool) error {
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.account(ctx, did)
	if err != nil {
		return err
	}
	if a.InvitesDisabled == disabled {
		return nil
	}
	_, err = p.commit(ctx, events.Must(did, &events.AccountInvites{Disabled: disabled}))
	return err
}

// DisableInviteCodes disables the codes named and every code made for the
// accounts named (admin.disableInviteCodes). The admin's codes cannot be
// disabled by account.
func (p *PDS) DisableInviteCodes(ctx context.Context, codes, forAccounts []string) error {
	if slices.Contains(forAccounts, "admin") {
		return &Error{Kind: ErrInvalidInput, Msg: "cannot disable admin invite codes"}
	}
	todo := slices.Clone(codes)
	if len(forAccounts) > 0 {
		all, err := p.Accounts.Invites(ctx)
		if err != nil {
			return err
		}
		for _, inv := range all {
			if slices.Contains(forAccounts, inv.ForAccount) && !slices.Contains(todo, inv.Code) {
				todo = append(todo, inv.Code)
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	_, err := p.commit(ctx, events.Must(p.Service.DID(), &events.InviteDisabled{Codes: todo}))
	return err
}

// AdminUpdateEmail sets did's address (admin.updateAccountEmail): it is
// unconfirmed until confirmed again, and every emailed token ends.
func (p *PDS) AdminUpdateEmail(ctx context.Context, did syntax.DID, email string) error {
	addr, err := mail.ParseAddress(strings.TrimSpace(email))
	if err != nil || addr != strings.TrimSpace(email) {
		return &Error{Kind: ErrInvalidInput, Msg: "This email address is not supported, please use a different email."}
	}
	unlock := p.Lock(did)
	defer unlock()
	if _, err := p.account(ctx, did); err != nil {
		return &Error{Kind: ErrInvalidInput, Msg: "Account does not exist: " + did.String()}
	}
	release, err := p.claimEmail(ctx, did, addr)
	if err != nil {
		return err
	}
	defer release()
	_, err = p.commit(ctx, events.Must(did, &events.Email{Email: addr}), used(did, ""))
	return err
}

// AdminUpdatePassword sets did's password (admin.updateAccountPassword),
// ending every session and the reset code, as the reference's
// updateAccountPassword.
func (p *PDS) AdminUpdatePassword(ctx context.Context, did syntax.DID, password string) error {
	if auth.PasswordLength(password) > auth.NewPasswordMaxLength {
		return &Error{Kind: ErrInvalidInput, Msg: "Invalid password length."}
	}
	if password == "" {
		return &Error{Kind: ErrInvalidInput, Msg: "Password is required"}
	}
	unlock := p.Lock(did)
	defer unlock()
	if _, err := p.account(ctx, did); err != nil {
		return err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	_, err = p.commit(ctx,
		events.Must(did, &events.Password{PasswordHash: hash}),
		events.Must(did, &events.SessionRevoked{Reason: "password set by the admin"}),
		used(did, events.PurposeResetPassword))
	return err
}

// AdminUpdateHandle sets did's handle (admin.updateAccountHandle): any
// valid handle, under the service's domains or not (the operator vouches
// for it, as the reference's allowAnyValid). A did:plc's document is
// updated with the PDS rotation key; a did:web's must already name the
// handle. An #identity event tells relays, even when nothing changed.
func (p *PDS) AdminUpdateHandle(ctx context.Context, did syntax.DID, handle syntax.Handle) error {
	handle = handle.Normalize()
	if !handle.AllowedTLD() {
		return &Error{Kind: ErrInvalidHandle, Msg: "Handle TLD is invalid or disallowed"}
	}
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.account(ctx, did)
	if err != nil {
		return &Error{Kind: ErrInvalidInput, Msg: "Account not found"}
	}
	release, err := p.claims.take(func(pending func(string) int) error {
		return p.handleFree(ctx, handle, a.DID, pending)
	}, handleClaim(handle))
	if err != nil {
		return err
	}
	defer release()
	switch did.Method() {
	case "plc":
		if a.Handle != handle {
			if _, err := p.PLC.UpdateHandle(ctx, a.DID, p.RotationKey, handle); err != nil {
				return &Error{Kind: ErrPLC, Msg: fmt.Sprintf("the PLC directory refused the handle update: %v", err)}
			}
		}
	default:
		p.Directory.Purge(did)
		doc, err := p.Directory.Resolve(ctx, did)
		if err != nil {
			return &Error{Kind: ErrInvalidInput, Msg: "DID is not properly configured for handle"}
		}
		ident := identity.ParseIdentity(doc)
		if h, err := ident.DeclaredHandle(); err != nil || h.Normalize() != handle {
			return &Error{Kind: ErrInvalidInput, Msg: "DID is not properly configured for handle"}
		}
	}
	_, err = p.commit(ctx, &eventlog.Event{Kind: eventlog.KindIdentity, DID: a.DID, Identity: &eventlog.Identity{Handle: handle}})
	return err
}
