package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/projections"
)

// Preferences replaces an account's stored preferences.
type Preferences struct {
	// Values are the new preferences: JSON objects with a $type, in order.
	Values []json.RawMessage `json:"values"`
	// Keep lists the $types of stored preferences the write leaves in
	// place (those its writer may not see or set: an app password keeps
	// the full-access-only personal details). Kept ones stay ahead of
	// Values, in their order.
	Keep []string `json:"keep,omitempty"`
}

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

// applyPreferences applies a TypePreferencesPut event. Preferences of an
// account this projection does not hold are dropped.
func applyPreferences(w *projections.Writer, did syntax.DID, data []byte) error {
	var put Preferences
	if err := json.Unmarshal(data, &put); err != nil {
		return err
	}
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
