package pds

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigoidentity "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/accounts"
)

// Account migration: in (createAccount with a DID, importRepo, blobs,
// submitPlcOperation, activateAccount) and out (requestPlcOperationSignature,
// signPlcOperation, deactivateAccount).

// ErrIncompatibleDIDDoc is a DID document that does not (yet) hand the
// account to this PDS.
var ErrIncompatibleDIDDoc = errors.New("pds: DID document does not point here")

// ReserveSigningKey makes a repo signing key for did (an account that will
// be created here by migration) and returns its did:key. A later
// createAccount with that DID uses it, so the PLC operation that moves the
// account can name it before the account exists. Without a DID the key is
// reserved under its own did:key (the reference's behaviour).
func (p *PDS) ReserveSigningKey(ctx context.Context, did syntax.DID) (string, error) {
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		return "", err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return "", err
	}
	owner := did
	if owner == "" {
		owner = syntax.DID(pub.DIDKey())
	}
	if _, err := p.commit(ctx, events.Must(owner, &events.KeyReserved{Key: key.Multibase()})); err != nil {
		return "", err
	}
	return pub.DIDKey(), nil
}

// reservedKey returns the key reserved for did, if any.
func (p *PDS) reservedKey(ctx context.Context, did syntax.DID) (atcrypto.PrivateKeyExportable, error) {
	seq, err := p.Accounts.ReservedKey(ctx, did)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ev, err := p.Log.Get(ctx, seq)
	if err != nil {
		return nil, err
	}
	var k events.KeyReserved
	if ev.Private == nil || ev.Private.Type != events.TypeKeyReserved || events.Unmarshal(ev.Private.Data, &k) != nil {
		return nil, fmt.Errorf("pds: seq %d is not a reserved key", seq)
	}
	return atcrypto.ParsePrivateMultibase(k.Key)
}

// checkDIDDoc checks that did's current document hands the account to
// this PDS: its atproto_pds endpoint is this PDS and its atproto key is the
// account's signing key (the cache is bypassed). A document that moved the
// account elsewhere fails it, so an account that left cannot be
// reactivated here behind the network's back.
func (p *PDS) checkDIDDoc(ctx context.Context, a *accounts.Account) error {
	bad := func(msg string) error { return &Error{Kind: ErrIncompatibleDIDDoc, Msg: msg} }
	p.Directory.Purge(a.DID)
	doc, err := p.Directory.Resolve(ctx, a.DID)
	if err != nil {
		return &Error{Kind: ErrPLC, Msg: fmt.Sprintf("could not resolve the DID: %v", err)}
	}
	ident := indigoidentity.ParseIdentity(doc)
	if ident.PDSEndpoint() != p.Service.PublicURL() {
		return bad("DID document atproto_pds service endpoint does not match PDS public url")
	}
	key, err := p.SigningKey(ctx, a.DID)
	if err != nil {
		return err
	}
	want, err := key.PublicKey()
	if err != nil {
		return err
	}
	got, err := ident.PublicKey()
	if err != nil || got.DIDKey() != want.DIDKey() {
		return bad("DID document verification method does not match expected signing key")
	}
	return nil
}

// DIDDocValid reports whether did's document hands the account to this PDS
// (checkAccountStatus's validDid).
func (p *PDS) DIDDocValid(ctx context.Context, did syntax.DID) bool {
	a, err := p.account(ctx, did)
	return err == nil && p.checkDIDDoc(ctx, a) == nil
}

// SubmitPLCOperation sends op (signed by the account's previous host) to
// the PLC directory if it hands did to this PDS: this PDS's rotation key
// among the rotation keys, its endpoint as atproto_pds, the account's
// signing key as the atproto verification method, and the account's
// handle first in alsoKnownAs. An #identity event follows.
func (p *PDS) SubmitPLCOperation(ctx context.Context, did syntax.DID, op *plc.Op) error {
	bad := func(msg string) error { return &Error{Kind: ErrInvalidInput, Msg: msg} }
	a, err := p.account(ctx, did)
	if err != nil {
		return err
	}
	if op.Type != plc.TypeOperation || op.Validate() != nil || op.Sig == "" {
		return bad("Invalid operation")
	}
	rot, err := p.RotationKey.PublicKey()
	if err != nil {
		return err
	}
	if !slices.Contains(op.RotationKeys, rot.DIDKey()) {
		return bad("Rotation keys do not include server's rotation key")
	}
	svc := op.Services["atproto_pds"]
	if svc.Type != "AtprotoPersonalDataServer" {
		return bad("Incorrect type on atproto_pds service")
	}
	if svc.Endpoint != p.Service.PublicURL() {
		return bad("Incorrect endpoint on atproto_pds service")
	}
	key, err := p.SigningKey(ctx, did)
	if err != nil {
		return err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return err
	}
	if op.VerificationMethods["atproto"] != pub.DIDKey() {
		return bad("Incorrect signing key")
	}
	if a.Handle != "" && (len(op.AlsoKnownAs) == 0 || op.AlsoKnownAs[0] != plc.HandleURI(a.Handle)) {
		return bad("Incorrect handle in alsoKnownAs")
	}
	if err := p.PLC.Submit(ctx, did, op); err != nil {
		return &Error{Kind: ErrPLC, Msg: fmt.Sprintf("the PLC directory refused the operation: %v", err)}
	}
	p.Directory.Purge(did)
	_, err = p.commit(ctx, &eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: a.Handle}})
	return err
}

// PLCChanges are signPlcOperation's requested changes; nil keeps the
// current value.
type PLCChanges struct {
	RotationKeys        []string
	AlsoKnownAs         []string
	VerificationMethods map[string]string
	Services            map[string]plc.Service
}

// SignPLCOperation signs, with this PDS's rotation key, the PLC operation
// that follows did's current one with the requested changes — how an
// account leaves for another PDS. It needs the code mailed by
// RequestPLCOperationSignature (used here). It does not submit it.
func (p *PDS) SignPLCOperation(ctx context.Context, did syntax.DID, token string, ch PLCChanges) (*plc.Op, error) {
	if token == "" {
		return nil, &Error{Kind: ErrInvalidInput, Msg: "email confirmation token required to sign PLC operations"}
	}
	unlock := p.Lock(did)
	defer unlock()
	a, err := p.account(ctx, did)
	if err != nil {
		return nil, err
	}
	if err := p.checkToken(ctx, a, events.PurposePLCOperation, token); err != nil {
		return nil, err
	}
	last, err := p.PLC.GetLastOp(ctx, did)
	if err != nil {
		return nil, &Error{Kind: ErrPLC, Msg: fmt.Sprintf("could not read the DID's last operation: %v", err)}
	}
	if last.Type == plc.TypeTombstone {
		return nil, &Error{Kind: ErrInvalidInput, Msg: "Did is tombstoned"}
	}
	op, err := plc.UpdateOp(last, p.RotationKey, func(op *plc.Op) error {
		if ch.RotationKeys != nil {
			op.RotationKeys = slices.Clone(ch.RotationKeys)
		}
		if ch.AlsoKnownAs != nil {
			op.AlsoKnownAs = slices.Clone(ch.AlsoKnownAs)
		}
		if ch.VerificationMethods != nil {
			op.VerificationMethods = maps.Clone(ch.VerificationMethods)
		}
		if ch.Services != nil {
			op.Services = maps.Clone(ch.Services)
		}
		return nil
	})
	if err != nil {
		return nil, &Error{Kind: ErrInvalidInput, Msg: fmt.Sprintf("cannot sign that operation: %v", err)}
	}
	if _, err := p.commit(ctx, used(did, events.PurposePLCOperation)); err != nil {
		return nil, err
	}
	return op, nil
}

// ScheduleDeletion records that did, now deactivated, is to be deleted at
// at (deactivateAccount's deleteAfter); Run deletes it then if it is still
// deactivated.
func (p *PDS) ScheduleDeletion(ctx context.Context, did syntax.DID, at time.Time) error {
	_, err := p.commit(ctx, events.Must(did, &events.DeletionScheduled{At: at.UTC().Format(time.RFC3339Nano)}))
	return err
}

// deleteScheduled deletes deactivated accounts past their deleteAfter.
func (p *PDS) deleteScheduled(ctx context.Context) (int, error) {
	due, err := p.Accounts.DueDeletions(ctx, p.Now())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, did := range due {
		a, err := p.Accounts.Get(ctx, did)
		if err != nil || a.Status != StatusDeactivated {
			continue // reactivated, taken down or gone: the schedule lapses
		}
		if err := p.DeleteAccount(ctx, did); err != nil {
			return n, err
		}
		p.opts.Logger.Info("deleted a deactivated account at its deleteAfter", "did", did)
		n++
	}
	return n, nil
}

// runDeletions deletes deactivated accounts past their deleteAfter, every
// minute, until ctx ends.
func (p *PDS) runDeletions(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, err := p.deleteScheduled(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.Error("scheduled account deletions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeleteScheduled deletes now the deactivated accounts past their
// deleteAfter (Run does it every minute) and returns how many.
func (p *PDS) DeleteScheduled(ctx context.Context) (int, error) { return p.deleteScheduled(ctx) }
