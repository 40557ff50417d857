package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
)

// Payload is the payload of a private event.
type Payload interface {
	// Type is the event type name, as stored in eventlog.Private.Type.
	Type() string
	// Secret reports whether the log seals the payload at rest.
	Secret() bool
}

// rawPayload is a payload whose data is not JSON.
type rawPayload interface {
	Payload
	encode() ([]byte, error)
	decode([]byte) error
}

// checked is a payload with fields it cannot do without (a JSON decoder
// leaves an absent field empty): New refuses to encode it and Decode to
// decode it without them, so what decodes always encodes again.
type checked interface {
	Payload
	check() error
}

// normalized is a payload holding raw JSON that Decode puts in the one
// form New writes (compact, nothing escaped), so that what decodes
// re-encodes to the same bytes.
type normalized interface {
	Payload
	normalize() error
}

// ErrUnknownType is returned by Decode for a type this catalogue does not
// list (an event written by a newer pdslog): readers skip such events.
var ErrUnknownType = errors.New("events: unknown private event type")

// New wraps p as a private event about did.
func New(did syntax.DID, p Payload) (*eventlog.Event, error) {
	if c, ok := p.(checked); ok {
		if err := c.check(); err != nil {
			return nil, fmt.Errorf("events: encode %s: %w", p.Type(), err)
		}
	}
	var data []byte
	var err error
	if r, ok := p.(rawPayload); ok {
		data, err = r.encode()
	} else {
		data, err = marshal(p)
	}
	if err != nil {
		return nil, fmt.Errorf("events: encode %s: %w", p.Type(), err)
	}
	return &eventlog.Event{Kind: eventlog.KindPrivate, DID: did,
		Private: &eventlog.Private{Type: p.Type(), Secret: p.Secret(), Data: data}}, nil
}

// Must is New for payloads that always encode (every type here but a
// SigningKey without a key and an AccountCreated without a handle).
func Must(did syntax.DID, p Payload) *eventlog.Event {
	ev, err := New(did, p)
	if err != nil {
		panic(err)
	}
	return ev
}

// Decode returns the typed payload of a private event: a pointer to one of
// this package's payload types. It wraps ErrUnknownType for a type not in
// the catalogue.
func Decode(pr *eventlog.Private) (Payload, error) {
	mk, ok := catalogue[pr.Type]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, pr.Type)
	}
	p := mk()
	if err := Unmarshal(pr.Data, p); err != nil {
		return nil, fmt.Errorf("events: decode %s: %w", pr.Type, err)
	}
	return p, nil
}

// Unmarshal decodes data into p, a pointer to a payload of p's type.
func Unmarshal(data []byte, p Payload) error {
	if r, ok := p.(rawPayload); ok {
		return r.decode(data)
	}
	if err := json.Unmarshal(data, p); err != nil {
		return err
	}
	if n, ok := p.(normalized); ok {
		if err := n.normalize(); err != nil {
			return err
		}
	}
	if c, ok := p.(checked); ok {
		return c.check()
	}
	return nil
}

// marshal is json.Marshal without HTML escaping: the log keeps '<', '>'
// and '&' as written (json.Marshal would turn them into \u003c and so on,
// changing the bytes of raw JSON such as stored preferences).
func marshal(p Payload) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Types lists every type name in the catalogue, sorted.
func Types() []string {
	out := make([]string, 0, len(catalogue))
	for t := range catalogue {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// catalogue maps each type name to a constructor of its payload.
var catalogue = map[string]func() Payload{
	TypeAccountCreated:     func() Payload { return new(AccountCreated) },
	TypePassword:           func() Payload { return new(Password) },
	TypeEmail:              func() Payload { return new(Email) },
	TypeSessionCreated:     func() Payload { return new(SessionCreated) },
	TypeSessionRotated:     func() Payload { return new(SessionRotated) },
	TypeSessionRevoked:     func() Payload { return new(SessionRevoked) },
	TypeAppPasswordCreated: func() Payload { return new(AppPasswordCreated) },
	TypeAppPasswordRevoked: func() Payload { return new(AppPasswordRevoked) },
	TypeInviteCreated:      func() Payload { return new(InviteCreated) },
	TypeInviteDisabled:     func() Payload { return new(InviteDisabled) },
	TypePreferencesPut:     func() Payload { return new(PreferencesPut) },
	TypeBlobUploaded:       func() Payload { return new(BlobUploaded) },
	TypeBlobDeleted:        func() Payload { return new(BlobDeleted) },
	TypeBlobQuarantine:     func() Payload { return new(BlobQuarantine) },
	TypeSigningKey:         func() Payload { return new(SigningKey) },
	TypeEmailTokenIssued:   func() Payload { return new(EmailTokenIssued) },
	TypeEmailTokenUsed:     func() Payload { return new(EmailTokenUsed) },
	TypeEmailAuthFactor:    func() Payload { return new(EmailAuthFactor) },
	TypeRepoImported:       func() Payload { return new(RepoImported) },
	TypeOAuthRequest:       func() Payload { return new(OAuthRequest) },
	TypeOAuthRequestBound:  func() Payload { return new(OAuthRequestBound) },
	TypeOAuthRequestEnded:  func() Payload { return new(OAuthRequestEnded) },
	TypeOAuthCode:          func() Payload { return new(OAuthCode) },
	TypeOAuthDeviceSignIn:  func() Payload { return new(OAuthDeviceSignIn) },
	TypeOAuthDeviceSignOut: func() Payload { return new(OAuthDeviceSignOut) },
	TypeOAuthSession:       func() Payload { return new(OAuthSession) },
	TypeOAuthRefreshed:     func() Payload { return new(OAuthRefreshed) },
	TypeOAuthRevoked:       func() Payload { return new(OAuthRevoked) },
	TypeKeyReserved:        func() Payload { return new(KeyReserved) },
	TypeDeletionScheduled:  func() Payload { return new(DeletionScheduled) },
	TypeAccountTakedown:    func() Payload { return new(AccountTakedown) },
	TypeRecordTakedown:     func() Payload { return new(RecordTakedown) },
	TypeAccountInvites:     func() Payload { return new(AccountInvites) },
}
