package accounts

import (
	"encoding/json"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
)

// Private event types this package owns. Each payload is JSON (the Data of
// an eventlog.Private); types holding secrets are sealed at rest by the log.
// A payload's fields never change meaning: add fields, never repurpose them.
const (
	TypeAccountCreated     = "account.created"      // Created (secret: password hash)
	TypePassword           = "account.password"     // Password (secret)
	TypeEmail              = "account.email"        // Email
	TypeSessionCreated     = "session.created"      // Session
	TypeSessionRotated     = "session.rotated"      // Rotation
	TypeSessionRevoked     = "session.revoked"      // Revocation
	TypeAppPasswordCreated = "app_password.created" // AppPassword (secret: hash)
	TypeAppPasswordRevoked = "app_password.revoked" // AppPasswordRevocation
	TypeInviteCreated      = "invite.created"       // Invite (DID: the service or the owner)
	TypeInviteDisabled     = "invite.disabled"      // InviteDisabled
	TypePreferencesPut     = "preferences.put"      // Preferences (preferences.go)
)

// Created is an account's creation: identity and credentials.
type Created struct {
	Handle       syntax.Handle `json:"handle"`
	Email        string        `json:"email,omitempty"`
	PasswordHash string        `json:"passwordHash"`
	InviteCode   string        `json:"inviteCode,omitempty"`
	CreatedAt    string        `json:"createdAt"`
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

// Session is a new login session: the refresh token's id and lifetime.
type Session struct {
	ID          string `json:"id"`
	AppPassword string `json:"appPassword,omitempty"` // name, when logged in with one
	Privileged  bool   `json:"privileged,omitempty"`
	CreatedAt   string `json:"createdAt"`
	ExpiresAt   string `json:"expiresAt"`
}

// Rotation replaces refresh token Old with New (refreshSession).
type Rotation struct {
	Old       string `json:"old"`
	New       string `json:"new"`
	At        string `json:"at"`
	ExpiresAt string `json:"expiresAt"`
}

// Revocation ends sessions: one by id, or all of the account's when ID is "".
type Revocation struct {
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// AppPassword is a new app password.
type AppPassword struct {
	Name       string `json:"name"`
	Hash       string `json:"hash"`
	Privileged bool   `json:"privileged"`
	CreatedAt  string `json:"createdAt"`
}

// AppPasswordRevocation removes an app password and its sessions.
type AppPasswordRevocation struct {
	Name string `json:"name"`
}

// Invite is a new invite code.
type Invite struct {
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

var secretTypes = map[string]bool{TypeAccountCreated: true, TypePassword: true, TypeAppPasswordCreated: true}

// Event wraps a payload of one of this package's types as a private event
// about did.
func Event(did syntax.DID, typ string, payload any) (*eventlog.Event, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return &eventlog.Event{Kind: eventlog.KindPrivate, DID: did,
		Private: &eventlog.Private{Type: typ, Secret: secretTypes[typ], Data: b}}, nil
}

// MustEvent is Event for payloads that always encode.
func MustEvent(did syntax.DID, typ string, payload any) *eventlog.Event {
	ev, err := Event(did, typ, payload)
	if err != nil {
		panic(err)
	}
	return ev
}
