package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections/accounts"
	"github.com/pdslog/pdslog/projections/blocks"
)

// Signup creates accounts: a did:plc whose genesis operation is signed by
// the PDS rotation key and submitted to the PLC directory, a K-256 repo
// signing key, and — in one atomic append — the key, the account, its
// #identity and #account events, the repo's first (empty) commit and a
// #sync of it, the reference's order.
type Signup struct {
	Service     Service
	Sessions    *Sessions
	Builder     *commit.Builder
	Blocks      *blocks.Projection
	PLC         *plc.Client
	RotationKey atcrypto.PrivateKey
	// HandleLimiter, if set, limits updateHandle per account (the
	// reference's 10 / 5 min and 50 / day).
	HandleLimiter *ratelimit.Limiter

	claims claims
}

type createAccountInput struct {
	Email       string `json:"email"`
	Handle      string `json:"handle"`
	InviteCode  string `json:"inviteCode"`
	Password    string `json:"password"`
	RecoveryKey string `json:"recoveryKey"`
}

type createAccountOutput struct {
	AccessJwt  string `json:"accessJwt"`
	RefreshJwt string `json:"refreshJwt"`
	Handle     string `json:"handle"`
	DID        string `json:"did"`
}

func xerr(name, format string, args ...any) *xrpc.Error {
	return &xrpc.Error{Status: http.StatusBadRequest, Name: name, Message: fmt.Sprintf(format, args...)}
}

// CreateAccount serves com.atproto.server.createAccount.
func (s *Signup) CreateAccount(c echo.Context) error {
	var in createAccountInput
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	acc := s.Sessions.Accounts
	handle, err := syntax.ParseHandle(in.Handle)
	if err != nil {
		return xerr("InvalidHandle", "Input/handle must be a valid handle")
	}
	handle = handle.Normalize()
	if !s.Service.HostsHandle(handle) {
		return xerr("UnsupportedDomain", "Not a supported handle domain")
	}
	if in.Email == "" || !strings.Contains(in.Email, "@") {
		return xrpc.InvalidRequest("Email is required")
	}
	if in.Password == "" {
		return xrpc.InvalidRequest("Password is required")
	}
	if err := auth.CheckNewPassword(in.Password); err != nil {
		return xrpc.InvalidRequest("%s", strings.TrimPrefix(err.Error(), "auth: "))
	}
	keys := []string{handleClaim(handle), emailClaim(in.Email)}
	if s.Service.InviteRequired {
		keys = append(keys, inviteClaim(in.InviteCode))
	}
	release, err := s.claims.take(func(pending func(string) int) error {
		if err := handleFree(ctx, acc, handle, "", pending); err != nil {
			return err
		}
		if pending(emailClaim(in.Email)) > 0 {
			return xrpc.InvalidRequest("Email already taken: %s", in.Email)
		}
		if _, err := acc.ByEmail(ctx, in.Email); err == nil {
			return xrpc.InvalidRequest("Email already taken: %s", in.Email)
		} else if !errors.Is(err, accounts.ErrNotFound) {
			return err
		}
		if s.Service.InviteRequired {
			return s.checkInvite(ctx, in.InviteCode, pending(inviteClaim(in.InviteCode)))
		}
		return nil
	}, keys...)
	if err != nil {
		return err
	}
	defer release()
	hash, err := auth.HashPassword(in.Password)
	if err != nil {
		return err
	}
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		return err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return err
	}
	rotPub, err := s.RotationKey.PublicKey()
	if err != nil {
		return err
	}
	var rotation []string
	if in.RecoveryKey != "" {
		if _, err := atcrypto.ParsePublicDIDKey(in.RecoveryKey); err != nil {
			return xrpc.InvalidRequest("recoveryKey must be a did:key")
		}
		rotation = append(rotation, in.RecoveryKey)
	}
	rotation = append(rotation, rotPub.DIDKey())
	did, op, err := plc.CreateGenesis(s.RotationKey, rotation, pub.DIDKey(), handle, s.Service.PublicURL())
	if err != nil {
		return fmt.Errorf("plc genesis: %w", err)
	}
	genesis, err := s.Builder.Build(ctx, commit.Repo{DID: did, Key: key, Blocks: s.Blocks.Source(did)}, nil)
	if err != nil {
		return err
	}
	sync, err := commit.SyncAfter(genesis.Event)
	if err != nil {
		return err
	}
	if err := s.PLC.Submit(ctx, did, op); err != nil {
		return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: "the PLC directory refused the new DID", Err: err}
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	created, err := events.New(did, &events.AccountCreated{Handle: handle, Email: in.Email,
		PasswordHash: hash, InviteCode: in.InviteCode, CreatedAt: now})
	if err != nil {
		return err
	}
	if err := s.Sessions.append(ctx,
		commit.SigningKeyEvent(did, key),
		created,
		&eventlog.Event{Kind: eventlog.KindIdentity, DID: did, Identity: &eventlog.Identity{Handle: handle}},
		&eventlog.Event{Kind: eventlog.KindAccount, DID: did, Account: &eventlog.Account{Active: true}},
		genesis.Event,
		sync,
	); err != nil {
		return err
	}
	a, err := acc.Get(ctx, did)
	if err != nil {
		return err
	}
	sess, err := s.Sessions.Open(ctx, a, "", false)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, createAccountOutput{AccessJwt: sess.AccessJwt, RefreshJwt: sess.RefreshJwt, Handle: handle.String(), DID: did.String()})
}

// checkInvite accepts a code that exists, is not disabled and has uses
// left beyond the pending signups already holding it.
func (s *Signup) checkInvite(ctx context.Context, code string, pending int) error {
	if code == "" {
		return xerr("InvalidInviteCode", "No invite code provided")
	}
	inv, err := s.Sessions.Accounts.Invite(ctx, code)
	if errors.Is(err, accounts.ErrNotFound) {
		return xerr("InvalidInviteCode", "Provided invite code not available")
	}
	if err != nil {
		return err
	}
	if inv.Disabled || len(inv.UsedBy)+pending >= inv.Available {
		return xerr("InvalidInviteCode", "Provided invite code not available")
	}
	return nil
}
