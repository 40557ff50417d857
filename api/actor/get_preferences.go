package actor

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/projections/accounts"
)

type preferencesOutput struct {
	Preferences []json.RawMessage `json:"preferences"`
}

// GetPreferences serves app.bsky.actor.getPreferences: the caller's stored
// preferences in the order they were put, plus a declared-age preference
// derived from the personal details' birth date; the personal details
// themselves only for full sessions.
func (h *Handlers) GetPreferences(c echo.Context) error {
	if h.Proxy != nil && !h.Proxy.IsLocalAppView(c) {
		return h.Proxy.Handle(c)
	}
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return err
	}
	stored, err := h.PDS.Accounts.Preferences(c.Request().Context(), caller.DID)
	if err != nil {
		return err
	}
	full := auth.Scope(caller.Scope).IsFull()
	out := make([]json.RawMessage, 0, len(stored)+1)
	var birthDate string
	for _, p := range stored {
		t := accounts.PreferenceType(p)
		if t == typePersonalDetails && birthDate == "" {
			var pd struct {
				BirthDate string `json:"birthDate"`
			}
			_ = json.Unmarshal(p, &pd)
			birthDate = pd.BirthDate
		}
		if allowed(t, full) {
			out = append(out, p)
		}
	}
	if birthDate != "" {
		if age, ok := ageAt(birthDate, h.now()); ok {
			b, err := json.Marshal(map[string]any{"$type": typeDeclaredAge, "isOverAge13": age >= 13, "isOverAge16": age >= 16, "isOverAge18": age >= 18})
			if err != nil {
				return err
			}
			out = append(out, b)
		}
	}
	return c.JSON(http.StatusOK, preferencesOutput{Preferences: out})
}
