package accounts

import (
	"context"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
)

// Keys: 'k' did 0x00 purpose -> events.EmailTokenIssued (the account's
// current token of that purpose); 'K' purpose 0x00 hash -> did (finding the
// account of a token presented alone, as resetPassword does).
func tokenPrefix(did syntax.DID) []byte { return append(append([]byte{'k'}, did...), 0) }
func tokenKey(did syntax.DID, purpose string) []byte {
	return append(tokenPrefix(did), purpose...)
}
func tokenHashKey(purpose, hash string) []byte {
	return append(append(append([]byte{'K'}, purpose...), 0), hash...)
}

// EmailToken returns did's current token of purpose (its hash, the address
// it was sent to, its expiry), or ErrNotFound.
func (p *Projection) EmailToken(ctx context.Context, did syntax.DID, purpose string) (*events.EmailTokenIssued, error) {
	var t events.EmailTokenIssued
	if err := readJSON(p.Space, tokenKey(did, purpose), &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// EmailTokenOwner returns the account holding the current token of purpose
// with this hash, or ErrNotFound.
func (p *Projection) EmailTokenOwner(ctx context.Context, purpose, hash string) (syntax.DID, error) {
	b, ok, err := p.Space.Get(tokenHashKey(purpose, hash))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", ErrNotFound
	}
	return syntax.DID(b), nil
}

func applyTokenIssued(w *projections.Writer, ev *eventlog.Event, _ *Account, t *events.EmailTokenIssued) (bool, error) {
	if _, ok, err := w.Get(accountKey(ev.DID)); err != nil || !ok {
		return false, err
	}
	if err := retireToken(w, ev.DID, t.Purpose); err != nil {
		return false, err
	}
	if err := setJSON(w, tokenKey(ev.DID, t.Purpose), t); err != nil {
		return false, err
	}
	return false, w.Set(tokenHashKey(t.Purpose, t.Hash), []byte(ev.DID))
}

func applyTokenUsed(w *projections.Writer, ev *eventlog.Event, _ *Account, u *events.EmailTokenUsed) (bool, error) {
	if u.Purpose != "" {
		return false, retireToken(w, ev.DID, u.Purpose)
	}
	return false, retireTokens(w, ev.DID)
}

// retireToken removes did's token of purpose and its hash index.
func retireToken(w *projections.Writer, did syntax.DID, purpose string) error {
	var old events.EmailTokenIssued
	ok, err := getJSON(w, tokenKey(did, purpose), &old)
	if err != nil || !ok {
		return err
	}
	if err := w.Delete(tokenHashKey(old.Purpose, old.Hash)); err != nil {
		return err
	}
	return w.Delete(tokenKey(did, purpose))
}

// retireTokens removes every token of did.
func retireTokens(w *projections.Writer, did syntax.DID) error {
	var purposes []string
	err := w.Scan(context.Background(), tokenPrefix(did), nil, false, func(k, _ []byte) error {
		purposes = append(purposes, string(k[len(tokenPrefix(did)):]))
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range purposes {
		if err := retireToken(w, did, p); err != nil {
			return err
		}
	}
	return nil
}

func applyEmailAuthFactor(_ *projections.Writer, _ *eventlog.Event, a *Account, f *events.EmailAuthFactor) (bool, error) {
	a.EmailAuthFactor = f.Enabled
	return true, nil
}
