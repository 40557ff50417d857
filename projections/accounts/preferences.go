package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
)

// Keys: 'f' did -> the JSON array of the account's preferences.
func prefsKey(did syntax.DID) []byte { return append([]byte{'f'}, did...) }

// PreferenceType is a stored preference's $type ("" if it has none).
func PreferenceType(raw json.RawMessage) string {
	var t struct {
		Type string `json:"$type"`
	}
	_ = json.Unmarshal(raw, &t)
	return t.Type
}

// applyPreferences applies a preferences.put event. Preferences of an
// account this projection does not hold are dropped.
func applyPreferences(w *projections.Writer, ev *eventlog.Event, _ *Account, put *events.PreferencesPut) (bool, error) {
	return false, putPreferences(w, ev.DID, put)
}

func putPreferences(w *projections.Writer, did syntax.DID, put *events.PreferencesPut) error {
	if _, ok, err := w.Get(accountKey(did)); err != nil || !ok {
		return err
	}
	var stored []json.RawMessage
	if _, err := getJSON(w, prefsKey(did), &stored); err != nil {
		return err
	}
	next := make([]json.RawMessage, 0, len(put.Values)+len(put.Keep))
	for _, v := range stored {
		if slices.Contains(put.Keep, PreferenceType(v)) {
			next = append(next, v)
		}
	}
	next = append(next, put.Values...)
	if len(next) == 0 {
		return w.Delete(prefsKey(did))
	}
	return setJSON(w, prefsKey(did), next)
}

// Preferences returns did's stored preferences in order (none: nil).
func (p *Projection) Preferences(ctx context.Context, did syntax.DID) ([]json.RawMessage, error) {
	var out []json.RawMessage
	if err := readJSON(p.Space, prefsKey(did), &out); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return out, nil
}
