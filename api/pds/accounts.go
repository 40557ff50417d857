package pds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/api/pds/mail"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/accounts"
)

// Account statuses (#account events and the accounts projection).
const (
	StatusTakendown   = "takendown"
	StatusSuspended   = "suspended"
	StatusDeactivated = "deactivated"
	StatusDeleted     = "deleted"
)

// TakenDown reports whether a is taken down (or suspended: a takedown
// with an end, the reference's softDeleted).
func TakenDown(a *accounts.Account) bool {
	return a.Status == StatusTakendown || a.Status == StatusSuspended
}

// CheckChange refuses a change by account a that the reference refuses:
// any change while it is taken down (checkTakedown: 401 AccountTakedown)
// and, when active is set (repo writes, blob uploads), any while it is
// deactivated (checkDeactivated: 401 AccountDeactivated) or otherwise not
// active.
func CheckChange(a *accounts.Account, active bool) error {
	switch {
	case TakenDown(a):
		return &Error{Kind: ErrAccountTakendown, Msg: "Account has been taken down"}
	case !active || a.Active:
		return nil
	case a.Status == StatusDeactivated:
		return &Error{Kind: ErrAccountDeactivated, Msg: "Account is deactivated"}
	}
	return errorf(ErrRepoInactive, "Account is not active (status %q)", a.Status)
}

// NewAccount is a signup.
type NewAccount struct {
	Handle      syntax.Handle // parsed; normalised here
	Email       string
	Password    string
	InviteCode  string
	RecoveryKey string // a did:key the user holds, first in the PLC rotation keys
	// DID, if set, is an existing identity moving here (account
	// migration); the caller has proved it is the DID's (service auth).
	// The account starts deactivated, with no repo and no PLC operation.
	DID syntax.DID
}

// CreateAccount creates an account: a did:plc whose genesis operation is
// signed by the PDS rotation key and submitted to the PLC directory, a
// K-256 repo signing key, and — in one atomic append — the key, the
// account, its #identity and #account events, the repo's first (empty)
// commit and a #sync of it, the reference's order. The handle must be a
// hosted one within the reference's rules (checkHostedHandle). It returns
// the account with a session opened with its password.
func (p *PDS) CreateAccount(ctx context.Context, in NewAccount) (*accounts.Account, *auth.Session, error) {
	handle := in.Handle.Normalize()
	if err := p.Service.checkHostedHandle(handle); err != nil {
		return nil, nil, err
	}
	if in.Email == "" {
		return nil, nil, &Error{Kind: ErrInvalidInput, Msg: "Email is required"}
	}
	// Longer than any address can be (and than login accepts), or not
	// one address.
	if addr, err := mail.ParseAddress(in.Email); err != nil || addr != in.Email || len(in.Email) > MaxEmailLength {
		return nil, nil, &Error{Kind: ErrInvalidInput, Msg: "This email address is not supported, please use a different email."}
	}
	if in.Password == "" {
		return nil, nil, &Error{Kind: ErrInvalidInput, Msg: "Password is required"}
	}
	if err := auth.CheckNewPassword(in.Password); err != nil {
		return nil, nil, &Error{Kind: ErrInvalidInput, Msg: strings.TrimPrefix(err.Error(), "auth: ")}
	}
	keys := []string{handleClaim(handle), emailClaim(in.Email)}
	if p.Service.InviteRequired {
		keys = append(keys, inviteClaim(in.InviteCode))
	}
	release, err := p.claims.take(func(pending func(string) int) error {
		if err := p.handleFree(ctx, handle, "", pending); err != nil {
			return err
		}
		if pending(emailClaim(in.Email)) > 0 {
			return errorf(ErrInvalidInput, "Email already taken: %s", in.Email)
		}
		if _, err := p.Accounts.ByEmail(ctx, in.Email); err == nil {
			return errorf(ErrInvalidInput, "Email already taken: %s", in.Email)
		} else if !errors.Is(err, accounts.ErrNotFound) {
			return err
		}
		if p.Service.InviteRequired {
			return p.checkInvite(ctx, in.InviteCode, pending(inviteClaim(in.InviteCode)))
		}
		return nil
	}, keys...)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	if in.DID != "" {
		return p.createMigratedAccount(ctx, in, handle)
	}
	var rotation []string
	if in.RecoveryKey != "" {
		if _, err := atcrypto.ParsePublicDIDKey(in.RecoveryKey); err != nil {
			return nil, nil, &Error{Kind: ErrInvalidInput, Msg: "recoveryKey must be a did:key"}
		}
		rotation = append(rotation, in.RecoveryKey)
	}
	hash, err := p.hashPassword(ctx, in.Password)
	if err != nil {
		return nil, nil, err
	}
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		return nil, nil, err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, nil, err
	}
	rotPub, err := p.RotationKey.PublicKey()
	if err != nil {
		return nil, nil, err
	}
	rotation = append(rotation, rotPub.DIDKey())
	did, op, err := plc.CreateGenesis(p.RotationKey, rotation, pub.DIDKey(), handle, p.Service.PublicURL())
	if err != nil {
		return nil, nil, fmt.Errorf("pds: plc genesis: %w", err)
	}
	genesis, err := p.Builder.Build(ctx, commit.Repo{DID: did, Key: key, Blocks: p.Blocks.Source(did)}, nil)
	if err != nil {
		return nil, nil, err
	}
	sync, err := commit.SyncAfter(genesis.Event)
	if err != nil {
		return nil, nil, err
	}
	if err := p.PLC.Submit(ctx, did, op); err != nil {
		return nil, nil, &Error{Kind: ErrPLC, Msg: fmt.Sprintf("the PLC directory refused the new DID: %v", err)}
	}
	created, err := events.New(did, &events.AccountCreated{Handle: handle, Email: in.Email,
		PasswordHash: hash, InviteCode: in.InviteCode, CreatedAt: p.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return nil, nil, err
	}
	if _, err := p.commit(ctx,
		commit.SigningKeyEvent(did, key),
		created,
		&eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: handle}},
		&eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: true}},
		genesis.Event,
		sync,
	); err != nil {
		return nil, nil, err
	}
	a, err := p.Accounts.Get(ctx, did)
	if err != nil {
		return nil, nil, err
	}
	sess, err := p.Login(ctx, a, "", false)
	if err != nil {
		return nil, nil, err
	}
	return a, sess, nil
}

// createMigratedAccount is CreateAccount for an identity moving in: the
// key reserved for it (or a new one), the account, #identity and a
// deactivated #account, and no commit until importRepo.
func (p *PDS) createMigratedAccount(ctx context.Context, in NewAccount, handle syntax.Handle) (*accounts.Account, *auth.Session, error) {
	did := in.DID
	if _, err := p.Accounts.Get(ctx, did); err == nil {
		return nil, nil, errorf(ErrInvalidInput, "Account already exists: %s", did)
	} else if !errors.Is(err, accounts.ErrNotFound) {
		return nil, nil, err
	}
	key, err := p.reservedKey(ctx, did)
	if err != nil {
		return nil, nil, err
	}
	if key == nil {
		if key, err = atcrypto.GeneratePrivateKeyK256(); err != nil {
			return nil, nil, err
		}
	}
	hash, err := p.hashPassword(ctx, in.Password)
	if err != nil {
		return nil, nil, err
	}
	created, err := events.New(did, &events.AccountCreated{Handle: handle, Email: in.Email,
		PasswordHash: hash, InviteCode: in.InviteCode, CreatedAt: p.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return nil, nil, err
	}
	if _, err := p.commit(ctx,
		commit.SigningKeyEvent(did, key),
		created,
		&eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: handle}},
		&eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: false, Status: StatusDeactivated}},
	); err != nil {
		return nil, nil, err
	}
	a, err := p.Accounts.Get(ctx, did)
	if err != nil {
		return nil, nil, err
	}
	sess, err := p.Login(ctx, a, "", false)
	if err != nil {
		return nil, nil, err
	}
	return a, sess, nil
}

// checkInvite accepts a code that exists, is not disabled and has uses
// left beyond the pending signups already holding it.
func (p *PDS) checkInvite(ctx context.Context, code string, pending int) error {
	if code == "" {
		return &Error{Kind: ErrInvalidInviteCode, Msg: "No invite code provided"}
	}
	inv, err := p.Accounts.Invite(ctx, code)
	if errors.Is(err, accounts.ErrNotFound) {
		return &Error{Kind: ErrInvalidInviteCode, Msg: "Provided invite code not available"}
	}
	if err != nil {
		return err
	}
	if inv.Disabled || len(inv.UsedBy)+pending >= inv.Available {
		return &Error{Kind: ErrInvalidInviteCode, Msg: "Provided invite code not available"}
	}
	return nil
}

// account returns did's account, or ErrAccountNotFound.
func (p *PDS) account(ctx context.Context, did syntax.DID) (*accounts.Account, error) {
	a, err := p.Accounts.Get(ctx, did)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, &Error{Kind: ErrAccountNotFound, Msg: "account not found"}
	}
	return a, err
}

// changeable returns did's account for a change made under did's lock:
// ErrAccountNotFound, or CheckChange's refusal of a taken-down account
// (the reference's checkTakedown). A deactivated account may change.
func (p *PDS) changeable(ctx context.Context, did syntax.DID) (*accounts.Account, error) {
	a, err := p.account(ctx, did)
	if err != nil {
		return nil, err
	}
	if err := CheckChange(a, false); err != nil {
		return nil, err
	}
	return a, nil
}

// SetActive activates or deactivates did's account (the owner's
// activateAccount / deactivateAccount): relays learn it from the #account
// event. Activation needs the DID document to point here with the
// account's key and a repo, and also emits #identity and a #sync of the
// current commit, as the reference does, so relays can resynchronise a repo
// they stopped serving (or switch to it after a migration). A taken-down
// account can do neither.
func (p *PDS) SetActive(ctx context.Context, did syntax.DID, active bool) error {
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.account(ctx, did)
	if err != nil {
		return err
	}
	if a.Status == StatusTakendown {
		return &Error{Kind: ErrAccountTakendown, Msg: "Account has been taken down"}
	}
	if a.Active == active {
		return nil
	}
	if !active {
		_, err := p.commit(ctx, &eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: false, Status: StatusDeactivated}})
		return err
	}
	// Only an account whose identity points here may be active here (the
	// reference's assertValidDidDocumentForService): an account migrated
	// in waits for its PLC update, one that moved away stays deactivated.
	if err := p.checkDIDDoc(ctx, a); err != nil {
		return err
	}
	head, err := p.Log.RepoHead(ctx, did)
	if errors.Is(err, eventlog.ErrNotFound) {
		return &Error{Kind: ErrInvalidInput, Msg: "the account has no repo yet: import it (com.atproto.repo.importRepo) before activating"}
	}
	if err != nil {
		return err
	}
	sync, err := commit.SyncEvent(ctx, did, head, p.Blocks.Source(did))
	if err != nil {
		return err
	}
	_, err = p.commit(ctx,
		&eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: true}},
		&eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: a.Handle}},
		sync)
	return err
}

// DeleteAccount deletes did's account: it appends the #account {active:
// false, status: deleted} event — kept forever, so relays and AppViews
// learn of the deletion — then purges every earlier event of the account
// from the log (their seqs stay as tombstones), after every projection has
// dropped its state, and finally removes the account's blob bytes.
func (p *PDS) DeleteAccount(ctx context.Context, did syntax.DID) error {
	unlock := p.Lock(did)
	defer unlock()
	if _, err := p.account(ctx, did); err != nil {
		return err
	}
	// Projections apply the deletion before the purge, so a projection
	// catching up later sees tombstones then the deletion: the same state.
	seq, err := p.commit(ctx, &eventlog.Event{Kind: eventlog.KindAccount, DID: did,
		Account: &eventlog.Account{Active: false, Status: StatusDeleted}})
	if err != nil {
		return err
	}
	if _, err := p.Log.Purge(ctx, did, seq); err != nil {
		return err
	}
	// The index forgot the account's blobs with the deletion; the bytes go
	// last (a crash before leaves unreachable bytes, never served).
	if err := p.BlobStore.DeleteAccount(ctx, did); err != nil {
		return fmt.Errorf("pds: delete blobs of %s: %w", did, err)
	}
	return nil
}

// UpdateHandle changes did's handle to one under the service's domains
// (within the reference's rules for hosted handles, as CreateAccount): the PLC document's alsoKnownAs is updated (signed with the PDS rotation
// key), then an #identity event tells relays. The #identity event is
// emitted even when the handle did not change, as the reference does, so
// relays re-resolve. A taken-down account cannot change its handle.
func (p *PDS) UpdateHandle(ctx context.Context, did syntax.DID, handle syntax.Handle) error {
	handle = handle.Normalize()
	if err := p.Service.checkHostedHandle(handle); err != nil {
		return err
	}
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.changeable(ctx, did)
	if err != nil {
		return err
	}
	release, err := p.claims.take(func(pending func(string) int) error {
		return p.handleFree(ctx, handle, a.DID, pending)
	}, handleClaim(handle))
	if err != nil {
		return err
	}
	defer release()
	if a.Handle != handle {
		if _, err := p.PLC.UpdateHandle(ctx, a.DID, p.RotationKey, handle); err != nil {
			return &Error{Kind: ErrPLC, Msg: fmt.Sprintf("the PLC directory refused the handle update: %v", err)}
		}
	}
	_, err = p.commit(ctx, &eventlog.Event{Kind: eventlog.KindIdentity, DID: a.DID, Identity: &eventlog.Identity{Handle: handle}})
	return err
}

// SigningKey returns did's repo signing key.
func (p *PDS) SigningKey(ctx context.Context, did syntax.DID) (atcrypto.PrivateKey, error) {
	a, err := p.account(ctx, did)
	if err != nil {
		return nil, err
	}
	return p.Keys.Get(ctx, did, a.SigningKeySeq)
}
