package actor

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog/events"
)

type putPreferencesInput struct {
	Preferences *[]json.RawMessage `json:"preferences"`
}

// PutPreferences serves app.bsky.actor.putPreferences: it replaces the
// caller's app.bsky preferences with the given ones, with the reference's
// checks in its order: the input matches the lexicon, every preference has
// a $type in the app.bsky namespace, and only full sessions may set the
// personal details. A session without full access keeps the stored
// personal details; the derived declared-age preference is never stored.
// The change is a private event in the log.
func (h *Handlers) PutPreferences(c echo.Context) error {
	if h.Proxy != nil && !h.Proxy.IsLocalAppView(c) {
		return h.Proxy.Handle(c)
	}
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	var in putPreferencesInput
	if err := xrpc.BindJSON(c, MaxPutBody, &in); err != nil {
		return err
	}
	if in.Preferences == nil {
		return xrpc.InvalidRequest(`Input must have the property "preferences"`)
	}
	items := *in.Preferences
	data := make([]any, len(items))
	types := make([]string, len(items))
	for i, raw := range items {
		m, err := atdata.UnmarshalJSON(raw)
		if err != nil {
			return xrpc.InvalidRequest("Input/preferences/%d is invalid: %v", i, err)
		}
		t, ok := m["$type"].(string)
		if !ok || t == "" {
			return xrpc.InvalidRequest("Preference is missing a $type")
		}
		data[i], types[i] = m, t
	}
	if err := validate(data); err != nil {
		return xrpc.InvalidRequest("Input/preferences is invalid: %v", err)
	}
	for _, t := range types {
		if !inNamespace(t) {
			return xrpc.InvalidRequest("Some preferences are not in the %s namespace", Namespace)
		}
	}
	full := auth.Scope(caller.Scope).IsFull()
	var forbidden []string
	for _, t := range types {
		if !allowed(t, full) {
			forbidden = append(forbidden, t)
		}
	}
	if len(forbidden) > 0 {
		return xrpc.InvalidRequest("Do not have authorization to set preferences: %s", strings.Join(forbidden, ", "))
	}
	put := events.PreferencesPut{Values: []json.RawMessage{}}
	for i, raw := range items {
		if types[i] != typeDeclaredAge {
			put.Values = append(put.Values, compact(raw))
		}
	}
	if !full {
		put.Keep = []string{typePersonalDetails}
	}
	if err := h.PDS.PutPreferences(c.Request().Context(), caller.DID, put); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// compact removes insignificant whitespace from a JSON value (it is
// valid: atdata parsed it).
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}
