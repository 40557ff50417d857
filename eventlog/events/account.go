package events

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Account, session, app password, invite and preference types.
const (
	TypeAccountCreated     = "account.created"      // AccountCreated (secret: password hash)
	TypePassword           = "account.password"     // Password (secret)
	TypeEmail              = "account.email"        // Email
	TypeSessionCreated     = "session.created"      // SessionCreated
	TypeSessionRotated     = "session.rotated"      // SessionRotated
	TypeSessionRevoked     = "session.revoked"      // SessionRevoked
	TypeAppPasswordCreated = "app_password.created" // AppPasswordCreated (secret: hash)
	TypeAppPasswordRevoked = "app_password.revoked" // AppPasswordRevoked
	TypeInviteCreated      = "invite.created"       // InviteCreated (DID: the service or the owner)
	TypeInviteDisabled     = "invite.disabled"      // InviteDisabled
	TypePreferencesPut     = "preferences.put"      // PreferencesPut
)

// AccountCreated is an account's creation: identity and credentials.
type AccountCreated struct {
	Handle       syntax.Handle `json:"handle"`
	Email        string        `json:"email,omitempty"`
	PasswordHash string        `json:"passwordHash"`
	InviteCode   string        `json:"inviteCode,omitempty"`
	CreatedAt    string        `json:"createdAt"`
}

// check: every account is created with a handle.
func (a *AccountCreated) check() error {
	if a.Handle == "" {
		return errors.New("no handle")
	}
	return nil
}

// Password is a password change.
type Password struct {
	PasswordHash string `json:"passwordHash"`
}

// Email is an email change or confirmation.
type Email struct {
	Email     string `json:"email"`
	Confirmed bool   `json:"confirmed"`
}

// SessionCreated is a new login session: the refresh token's id and
// lifetime.
type SessionCreated struct {
	ID          string `json:"id"`
	AppPassword string `json:"appPassword,omitempty"` // name, when logged in with one
	Privileged  bool   `json:"privileged,omitempty"`
	CreatedAt   string `json:"createdAt"`
	ExpiresAt   string `json:"expiresAt"`
}

// SessionRotated replaces refresh token Old with New (refreshSession).
type SessionRotated struct {
	Old       string `json:"old"`
	New       string `json:"new"`
	At        string `json:"at"`
	ExpiresAt string `json:"expiresAt"`
}

// SessionRevoked ends sessions: one by id (and every session rotated from
// it), or all of the account's when ID is "".
type SessionRevoked struct {
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// AppPasswordCreated is a new app password.
type AppPasswordCreated struct {
	Name       string `json:"name"`
	Hash       string `json:"hash"`
	Privileged bool   `json:"privileged"`
	CreatedAt  string `json:"createdAt"`
}

// AppPasswordRevoked removes an app password and its sessions.
type AppPasswordRevoked struct {
	Name string `json:"name"`
}

// InviteCreated is a new invite code.
type InviteCreated struct {
	Code       string `json:"code"`
	Available  int    `json:"available"`
	ForAccount string `json:"forAccount,omitempty"` // a DID, or "admin"
	CreatedBy  string `json:"createdBy"`
	CreatedAt  string `json:"createdAt"`
}

// InviteDisabled disables invite codes.
type InviteDisabled struct {
	Codes []string `json:"codes"`
}

// PreferencesPut replaces an account's stored preferences.
type PreferencesPut struct {
	// Values are the new preferences: JSON objects with a $type, in order.
	Values []json.RawMessage `json:"values"`
	// Keep lists the $types of stored preferences the write leaves in
	// place (those its writer may not see or set: an app password keeps
	// the full-access-only personal details). Kept ones stay ahead of
	// Values, in their order.
	Keep []string `json:"keep,omitempty"`
}

// normalize compacts each value: the form New writes them in.
func (p *PreferencesPut) normalize() error {
	for i, v := range p.Values {
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return err
		}
		p.Values[i] = b.Bytes()
	}
	return nil
}

func (*AccountCreated) Type() string     { return TypeAccountCreated }
func (*Password) Type() string           { return TypePassword }
func (*Email) Type() string              { return TypeEmail }
func (*SessionCreated) Type() string     { return TypeSessionCreated }
func (*SessionRotated) Type() string     { return TypeSessionRotated }
func (*SessionRevoked) Type() string     { return TypeSessionRevoked }
func (*AppPasswordCreated) Type() string { return TypeAppPasswordCreated }
func (*AppPasswordRevoked) Type() string { return TypeAppPasswordRevoked }
func (*InviteCreated) Type() string      { return TypeInviteCreated }
func (*InviteDisabled) Type() string     { return TypeInviteDisabled }
func (*PreferencesPut) Type() string     { return TypePreferencesPut }

func (*AccountCreated) Secret() bool     { return true }
func (*Password) Secret() bool           { return true }
func (*Email) Secret() bool              { return false }
func (*SessionCreated) Secret() bool     { return false }
func (*SessionRotated) Secret() bool     { return false }
func (*SessionRevoked) Secret() bool     { return false }
func (*AppPasswordCreated) Secret() bool { return true }
func (*AppPasswordRevoked) Secret() bool { return false }
func (*InviteCreated) Secret() bool      { return false }
func (*InviteDisabled) Secret() bool     { return false }
func (*PreferencesPut) Secret() bool     { return false }
