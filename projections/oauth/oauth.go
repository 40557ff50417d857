// Package oauth is the projection of the OAuth authorization server's
// state, built from the oauth.* events of the catalogue (eventlog/events):
//
//   - authorization requests (pushed at /oauth/par), the device each is
//     bound to, and how it ended (a code, a denial);
//   - authorization codes, by hash, until exchanged or expired;
//   - OAuth sessions: client, scope, DPoP key, the current access token id
//     and refresh token hash, every refresh token hash the session ever
//     had (a replayed one revokes it) and the code it came from;
//   - the accounts signed in on each device (browser) and the clients each
//     account has authorized, with their scopes (consent memory).
//
// A revoked session, a signed-out device, a deleted account leave nothing
// behind; a password reset (session.revoked for every session) revokes the
// account's OAuth sessions and signs it out of every device too. Requests
// are dropped an hour after they expire, deterministically: when a later
// request is pushed, by the event times.
package oauth

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
)

// Name is the projection's name.
const Name = "oauth"

// ErrNotFound is returned when nothing matches.
var ErrNotFound = errors.New("oauth: not found")

// RequestGrace is how long an expired request is kept (so that a late
// answer says "expired" rather than "unknown") before it is dropped.
const RequestGrace = time.Hour

// Request states.
const (
	RequestPending    = "pending"    // pushed, maybe bound to a device
	RequestAuthorized = "authorized" // a code was issued
	RequestExchanged  = "exchanged"  // the code was exchanged for a session
	RequestEnded      = "ended"      // denied or refused
)

// Request is an authorization request and what became of it.
type Request struct {
	events.OAuthRequest
	// Device is the device the request is bound to ("" before the first
	// visit to /oauth/authorize).
	Device string `json:"device,omitempty"`
	// Expires is the request's current expiry (RFC 3339): five minutes
	// after it was pushed, or after it was bound.
	Expires   string `json:"expires"`
	EndReason string `json:"endReason,omitempty"`

	// Grant is the account's answer, if it authorized the request.
	Grant *Grant `json:"-"`
}

// Status is the request's state: RequestPending, RequestAuthorized,
// RequestExchanged or RequestEnded.
func (r *Request) Status() string {
	switch {
	case r.Grant != nil && r.Grant.SessionID != "":
		return RequestExchanged
	case r.EndReason != "":
		return RequestEnded
	case r.Grant != nil:
		return RequestAuthorized
	}
	return RequestPending
}

// Grant is an account's consent to a request: the code issued (its hash),
// the scope granted and, once exchanged, the session.
type Grant struct {
	DID       syntax.DID `json:"did"`
	RequestID string     `json:"requestId"`
	CodeHash  string     `json:"codeHash"`
	ClientID  string     `json:"clientId"`
	Scope     string     `json:"scope"`
	Device    string     `json:"device,omitempty"`
	ExpiresAt string     `json:"expiresAt"`
	SessionID string     `json:"sessionId,omitempty"`
}

// Session is a live OAuth session.
type Session struct {
	events.OAuthSession
	DID       syntax.DID `json:"did"`
	UpdatedAt string     `json:"updatedAt"` // last refresh (or creation)
}

// DeviceAccount is an account signed in on a device.
type DeviceAccount struct {
	events.OAuthDeviceSignIn
	DID syntax.DID `json:"did"`
}

// AuthorizedClient is a client an account has authorized, with every
// scope it has granted it.
type AuthorizedClient struct {
	ClientID string   `json:"clientId"`
	Scopes   []string `json:"scopes"`
}

// Projection is the OAuth projection on a projections.Store.
//
// Keys (what an account's events write is keyed or valued by its DID, so
// that deleting the account removes exactly what replaying the log without
// its purged events would never have written):
//
//	'q' requestID                  -> Request (the service's events)
//	'x' be64(expires+grace) reqID  -> "" (requests to drop, by time)
//	'K' requestID                  -> did (the account that authorized it)
//	'k' did 0 requestID            -> Grant
//	'c' codeHash                   -> did 0 requestID
//	's' did 0 sessionID            -> Session
//	'u' did 0 sessionID 0 hash     -> "" (every refresh hash of the session)
//	'r' refreshHash                -> did 0 sessionID
//	'C' codeHash                   -> did 0 sessionID (the code a session came from)
//	'd' did 0 device               -> DeviceAccount
//	'v' device 0 did               -> ""
//	'a' did 0 clientID             -> AuthorizedClient
type Projection struct{ *projections.KV }

// New returns the OAuth projection stored in s.
func New(s *projections.Store) *Projection { return &Projection{projections.NewKV(s, Name, apply)} }

var _ projections.Projection = (*Projection)(nil)

func join(parts ...string) []byte {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

func reqKey(id string) []byte           { return append([]byte{'q'}, id...) }
func grantOwnerKey(id string) []byte    { return append([]byte{'K'}, id...) }
func grantPrefix(did syntax.DID) []byte { return append(append([]byte{'k'}, did...), 0) }
func grantKey(did syntax.DID, id string) []byte {
	return append(grantPrefix(did), id...)
}
func codeKey(hash string) []byte               { return append([]byte{'c'}, hash...) }
func sessPrefix(did syntax.DID) []byte         { return append(append([]byte{'s'}, did...), 0) }
func sessKey(did syntax.DID, id string) []byte { return append(sessPrefix(did), id...) }
func usedPrefix(did syntax.DID, id string) []byte {
	return append(append([]byte{'u'}, join(string(did), id)...), 0)
}
func refreshKey(hash string) []byte            { return append([]byte{'r'}, hash...) }
func sessCodeKey(hash string) []byte           { return append([]byte{'C'}, hash...) }
func devPrefix(did syntax.DID) []byte          { return append(append([]byte{'d'}, did...), 0) }
func devKey(did syntax.DID, dev string) []byte { return append(devPrefix(did), dev...) }
func revDevPrefix(dev string) []byte           { return append(append([]byte{'v'}, dev...), 0) }
func clientPrefix(did syntax.DID) []byte       { return append(append([]byte{'a'}, did...), 0) }
func clientKey(did syntax.DID, client string) []byte {
	return append(clientPrefix(did), client...)
}

func expiryKey(at time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{'x'}, uint64(max(at.Unix(), 0)))
	return append(k, id...)
}

func getJSON(w *projections.Writer, k []byte, v any) (bool, error) {
	b, ok, err := w.Get(k)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("oauth: corrupt value at %q: %w", k, err)
	}
	return true, nil
}

func setJSON(w *projections.Writer, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.Set(k, b)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func apply(w *projections.Writer, ev *eventlog.Event) error {
	switch ev.Kind {
	case eventlog.KindAccount:
		if ev.Account.Status == "deleted" {
			return forgetAccount(w, ev.DID)
		}
		return nil
	case eventlog.KindPrivate:
	default:
		return nil
	}
	switch ev.Private.Type {
	case events.TypeOAuthRequest, events.TypeOAuthRequestBound, events.TypeOAuthRequestEnded, events.TypeOAuthCode,
		events.TypeOAuthDeviceSignIn, events.TypeOAuthDeviceSignOut, events.TypeOAuthSession, events.TypeOAuthRefreshed,
		events.TypeOAuthRevoked, events.TypeSessionRevoked:
	default:
		return nil
	}
	p, err := events.Decode(ev.Private)
	if err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	switch p := p.(type) {
	case *events.OAuthRequest:
		return applyRequest(w, ev, p)
	case *events.OAuthRequestBound:
		return updateRequest(w, p.ID, func(r *Request) bool {
			if r.EndReason != "" || (r.Device != "" && r.Device != p.Device) {
				return false
			}
			r.Device, r.Expires = p.Device, p.ExpiresAt
			return true
		})
	case *events.OAuthRequestEnded:
		return updateRequest(w, p.ID, func(r *Request) bool {
			if r.EndReason != "" {
				return false
			}
			r.EndReason = p.Reason
			return true
		})
	case *events.OAuthCode:
		return applyCode(w, ev, p)
	case *events.OAuthDeviceSignIn:
		da := DeviceAccount{OAuthDeviceSignIn: *p, DID: ev.DID}
		if err := setJSON(w, devKey(ev.DID, p.Device), da); err != nil {
			return err
		}
		return w.Set(append(revDevPrefix(p.Device), ev.DID...), nil)
	case *events.OAuthDeviceSignOut:
		return signOut(w, ev.DID, p.Device)
	case *events.OAuthSession:
		return applySession(w, ev, p)
	case *events.OAuthRefreshed:
		return applyRefreshed(w, ev, p)
	case *events.OAuthRevoked:
		return revoke(w, ev.DID, p.ID)
	case *events.SessionRevoked:
		// Every session of the account ended (a password reset): its OAuth
		// sessions and device sign-ins end with them.
		if p.ID != "" {
			return nil
		}
		if err := revoke(w, ev.DID, ""); err != nil {
			return err
		}
		return signOut(w, ev.DID, "")
	}
	return nil
}

func applyRequest(w *projections.Writer, ev *eventlog.Event, p *events.OAuthRequest) error {
	// Drop requests whose grace ended before this one was pushed.
	if now := parseTime(p.CreatedAt); !now.IsZero() {
		if err := prune(w, now); err != nil {
			return err
		}
	}
	if ok, err := getJSON(w, reqKey(p.ID), &Request{}); err != nil || ok {
		return err // an id is used once
	}
	r := &Request{OAuthRequest: *p, Expires: p.ExpiresAt}
	return putRequest(w, r, "")
}

// putRequest stores r and moves its expiry index entry from old.
func putRequest(w *projections.Writer, r *Request, old string) error {
	if old != "" && old != r.Expires {
		if err := w.Delete(expiryKey(parseTime(old).Add(RequestGrace), r.ID)); err != nil {
			return err
		}
	}
	if err := w.Set(expiryKey(parseTime(r.Expires).Add(RequestGrace), r.ID), nil); err != nil {
		return err
	}
	return setJSON(w, reqKey(r.ID), r)
}

func updateRequest(w *projections.Writer, id string, f func(*Request) bool) error {
	var r Request
	ok, err := getJSON(w, reqKey(id), &r)
	if err != nil || !ok {
		return err
	}
	old := r.Expires
	if !f(&r) {
		return nil
	}
	return putRequest(w, &r, old)
}

func prune(w *projections.Writer, now time.Time) error {
	end := binary.BigEndian.AppendUint64([]byte{'x'}, uint64(max(now.Unix(), 0)))
	var drop [][]byte
	err := w.Scan(context.Background(), []byte{'x'}, nil, false, func(k, _ []byte) error {
		if string(k) >= string(end) {
			return io.EOF
		}
		drop = append(drop, append([]byte{}, k...))
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		id := string(k[9:])
		if did, ok, err := w.Get(grantOwnerKey(id)); err != nil {
			return err
		} else if ok {
			if err := dropGrant(w, syntax.DID(did), id); err != nil {
				return err
			}
		}
		if err := w.Delete(reqKey(id)); err != nil {
			return err
		}
		if err := w.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// dropGrant removes did's grant of request id and its indexes.
func dropGrant(w *projections.Writer, did syntax.DID, id string) error {
	var g Grant
	ok, err := getJSON(w, grantKey(did, id), &g)
	if err != nil {
		return err
	}
	if ok {
		if err := deleteIf(w, codeKey(g.CodeHash), join(string(did), id)); err != nil {
			return err
		}
	}
	if err := deleteIf(w, grantOwnerKey(id), []byte(did)); err != nil {
		return err
	}
	return w.Delete(grantKey(did, id))
}

// deleteIf deletes k if it holds v.
func deleteIf(w *projections.Writer, k, v []byte) error {
	cur, ok, err := w.Get(k)
	if err != nil || !ok || string(cur) != string(v) {
		return err
	}
	return w.Delete(k)
}

func applyCode(w *projections.Writer, ev *eventlog.Event, p *events.OAuthCode) error {
	var r Request
	ok, err := getJSON(w, reqKey(p.RequestID), &r)
	if err != nil || !ok || r.EndReason != "" {
		return err
	}
	if _, taken, err := w.Get(grantOwnerKey(p.RequestID)); err != nil || taken {
		return err // one code per request
	}
	g := Grant{DID: ev.DID, RequestID: p.RequestID, CodeHash: p.CodeHash, ClientID: p.ClientID, Scope: p.Scope,
		Device: p.Device, ExpiresAt: p.ExpiresAt}
	if err := setJSON(w, grantKey(ev.DID, p.RequestID), g); err != nil {
		return err
	}
	if err := w.Set(grantOwnerKey(p.RequestID), []byte(ev.DID)); err != nil {
		return err
	}
	if err := w.Set(codeKey(p.CodeHash), join(string(ev.DID), p.RequestID)); err != nil {
		return err
	}
	// Consent memory: the scopes the account has granted this client.
	var ac AuthorizedClient
	if _, err := getJSON(w, clientKey(ev.DID, p.ClientID), &ac); err != nil {
		return err
	}
	ac.ClientID = p.ClientID
	for _, s := range splitScope(p.Scope) {
		if !contains(ac.Scopes, s) {
			ac.Scopes = append(ac.Scopes, s)
		}
	}
	return setJSON(w, clientKey(ev.DID, p.ClientID), ac)
}

func applySession(w *projections.Writer, ev *eventlog.Event, p *events.OAuthSession) error {
	if ok, err := getJSON(w, sessKey(ev.DID, p.ID), &Session{}); err != nil || ok {
		return err
	}
	// The code is used: its grant records the session.
	if ref, ok, err := w.Get(codeKey(p.CodeHash)); err != nil {
		return err
	} else if ok {
		if did, id, err := splitRef(ref); err != nil {
			return err
		} else if did == ev.DID {
			var g Grant
			if ok, err := getJSON(w, grantKey(did, id), &g); err != nil {
				return err
			} else if ok && g.SessionID == "" {
				g.SessionID = p.ID
				if err := setJSON(w, grantKey(did, id), g); err != nil {
					return err
				}
			}
		}
	}
	s := Session{OAuthSession: *p, DID: ev.DID, UpdatedAt: p.CreatedAt}
	if err := setJSON(w, sessKey(ev.DID, p.ID), s); err != nil {
		return err
	}
	ref := join(string(ev.DID), p.ID)
	if p.CodeHash != "" {
		if err := w.Set(sessCodeKey(p.CodeHash), ref); err != nil {
			return err
		}
	}
	return addRefresh(w, ev.DID, p.ID, p.RefreshHash)
}

func addRefresh(w *projections.Writer, did syntax.DID, id, hash string) error {
	if hash == "" {
		return nil
	}
	if err := w.Set(append(usedPrefix(did, id), hash...), nil); err != nil {
		return err
	}
	return w.Set(refreshKey(hash), join(string(did), id))
}

func applyRefreshed(w *projections.Writer, ev *eventlog.Event, p *events.OAuthRefreshed) error {
	var s Session
	ok, err := getJSON(w, sessKey(ev.DID, p.ID), &s)
	if err != nil || !ok {
		return err
	}
	s.RefreshHash, s.TokenID, s.UpdatedAt, s.ExpiresAt = p.RefreshHash, p.TokenID, p.At, p.ExpiresAt
	if err := setJSON(w, sessKey(ev.DID, p.ID), s); err != nil {
		return err
	}
	return addRefresh(w, ev.DID, p.ID, p.RefreshHash)
}

// revoke drops did's session id, or all of them when id is "".
func revoke(w *projections.Writer, did syntax.DID, id string) error {
	var ids []string
	if id != "" {
		ids = []string{id}
	} else {
		err := w.Scan(context.Background(), sessPrefix(did), nil, false, func(k, _ []byte) error {
			ids = append(ids, string(k[len(sessPrefix(did)):]))
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, id := range ids {
		var s Session
		ok, err := getJSON(w, sessKey(did, id), &s)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		var hashes []string
		up := usedPrefix(did, id)
		if err := w.Scan(context.Background(), up, nil, false, func(k, _ []byte) error {
			hashes = append(hashes, string(k[len(up):]))
			return nil
		}); err != nil {
			return err
		}
		ref := join(string(did), id)
		for _, h := range hashes {
			if err := deleteIf(w, refreshKey(h), ref); err != nil {
				return err
			}
		}
		if err := w.DeletePrefix(up); err != nil {
			return err
		}
		if s.CodeHash != "" {
			if err := deleteIf(w, sessCodeKey(s.CodeHash), ref); err != nil {
				return err
			}
		}
		if err := w.Delete(sessKey(did, id)); err != nil {
			return err
		}
	}
	return nil
}

// signOut drops did's sign-in on device, or on every device when device
// is "".
func signOut(w *projections.Writer, did syntax.DID, device string) error {
	var devs []string
	if device != "" {
		devs = []string{device}
	} else {
		err := w.Scan(context.Background(), devPrefix(did), nil, false, func(k, _ []byte) error {
			devs = append(devs, string(k[len(devPrefix(did)):]))
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, d := range devs {
		if err := w.Delete(devKey(did, d)); err != nil {
			return err
		}
		if err := w.Delete(append(revDevPrefix(d), did...)); err != nil {
			return err
		}
	}
	return nil
}

func forgetAccount(w *projections.Writer, did syntax.DID) error {
	if err := revoke(w, did, ""); err != nil {
		return err
	}
	if err := signOut(w, did, ""); err != nil {
		return err
	}
	var reqs []string
	if err := w.Scan(context.Background(), grantPrefix(did), nil, false, func(k, _ []byte) error {
		reqs = append(reqs, string(k[len(grantPrefix(did)):]))
		return nil
	}); err != nil {
		return err
	}
	for _, id := range reqs {
		if err := dropGrant(w, did, id); err != nil {
			return err
		}
	}
	return w.DeletePrefix(clientPrefix(did))
}

func splitScope(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Queries.

func (p *Projection) read(k []byte, v any) error {
	b, ok, err := p.Space.Get(k)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	return json.Unmarshal(b, v)
}

// Request returns the request id with its grant, if any, or ErrNotFound.
func (p *Projection) Request(ctx context.Context, id string) (*Request, error) {
	var r Request
	if err := p.read(reqKey(id), &r); err != nil {
		return nil, err
	}
	did, ok, err := p.Space.Get(grantOwnerKey(id))
	if err != nil {
		return nil, err
	}
	if ok {
		var g Grant
		if err := p.read(grantKey(syntax.DID(did), id), &g); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		} else if err == nil {
			r.Grant = &g
		}
	}
	return &r, nil
}

// RequestByCode returns the request that issued the code with this hash,
// or ErrNotFound.
func (p *Projection) RequestByCode(ctx context.Context, codeHash string) (*Request, error) {
	ref, ok, err := p.Space.Get(codeKey(codeHash))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	_, id, err := splitRef(ref)
	if err != nil {
		return nil, err
	}
	return p.Request(ctx, id)
}

func splitRef(b []byte) (syntax.DID, string, error) {
	for i, c := range b {
		if c == 0 {
			return syntax.DID(b[:i]), string(b[i+1:]), nil
		}
	}
	return "", "", fmt.Errorf("oauth: corrupt session reference %q", b)
}

// Session returns did's live session id, or ErrNotFound.
func (p *Projection) Session(ctx context.Context, did syntax.DID, id string) (*Session, error) {
	var s Session
	if err := p.read(sessKey(did, id), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// SessionByRefresh returns the live session that has (or had) a refresh
// token with this hash, or ErrNotFound. The token is the current one if
// its hash is the session's RefreshHash; otherwise it was rotated away.
func (p *Projection) SessionByRefresh(ctx context.Context, hash string) (*Session, error) {
	ref, ok, err := p.Space.Get(refreshKey(hash))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	did, id, err := splitRef(ref)
	if err != nil {
		return nil, err
	}
	return p.Session(ctx, did, id)
}

// SessionByCode returns the live session a code (by hash) was exchanged
// for, or ErrNotFound.
func (p *Projection) SessionByCode(ctx context.Context, codeHash string) (*Session, error) {
	ref, ok, err := p.Space.Get(sessCodeKey(codeHash))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	did, id, err := splitRef(ref)
	if err != nil {
		return nil, err
	}
	return p.Session(ctx, did, id)
}

// Sessions lists did's live sessions.
func (p *Projection) Sessions(ctx context.Context, did syntax.DID) ([]Session, error) {
	var out []Session
	err := p.Space.Scan(ctx, sessPrefix(did), nil, false, func(_, v []byte) error {
		var s Session
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// DeviceAccounts lists the accounts signed in on device.
func (p *Projection) DeviceAccounts(ctx context.Context, device string) ([]DeviceAccount, error) {
	var dids []syntax.DID
	pre := revDevPrefix(device)
	if err := p.Space.Scan(ctx, pre, nil, false, func(k, _ []byte) error {
		dids = append(dids, syntax.DID(k[len(pre):]))
		return nil
	}); err != nil {
		return nil, err
	}
	var out []DeviceAccount
	for _, did := range dids {
		var da DeviceAccount
		if err := p.read(devKey(did, device), &da); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		out = append(out, da)
	}
	return out, nil
}

// DeviceAccount returns did's sign-in on device, or ErrNotFound.
func (p *Projection) DeviceAccount(ctx context.Context, device string, did syntax.DID) (*DeviceAccount, error) {
	var da DeviceAccount
	if err := p.read(devKey(did, device), &da); err != nil {
		return nil, err
	}
	return &da, nil
}

// AccountDevices lists the devices did is signed in on.
func (p *Projection) AccountDevices(ctx context.Context, did syntax.DID) ([]DeviceAccount, error) {
	var out []DeviceAccount
	err := p.Space.Scan(ctx, devPrefix(did), nil, false, func(_, v []byte) error {
		var da DeviceAccount
		if err := json.Unmarshal(v, &da); err != nil {
			return err
		}
		out = append(out, da)
		return nil
	})
	return out, err
}

// AuthorizedClient returns what did has granted client, or ErrNotFound.
func (p *Projection) AuthorizedClient(ctx context.Context, did syntax.DID, client string) (*AuthorizedClient, error) {
	var ac AuthorizedClient
	if err := p.read(clientKey(did, client), &ac); err != nil {
		return nil, err
	}
	return &ac, nil
}
