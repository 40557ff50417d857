package accounts

import (
	"strings"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
	"github.com/pdslog/pdslog/projections"
)

// Admin state of an account (com.atproto.admin.getAccountInfo and
// getSubjectStatus), from event times and the moderation events.

// noteDeactivation keeps DeactivatedAt: the time of the #account event
// that deactivated the account, kept while it stays deactivated, cleared
// when it is active again.
func noteDeactivation(a *Account, ev *eventlog.Event) {
	switch {
	case a.Active:
		a.DeactivatedAt = ""
	case a.Status == "deactivated" && a.DeactivatedAt == "":
		a.DeactivatedAt = string(ev.Time)
	}
}

// noteEmailConfirmation keeps EmailConfirmedAt: the time of the event that
// confirmed the current address; a new address or an unconfirmed one
// clears it.
func noteEmailConfirmation(a *Account, ev *eventlog.Event, e *events.Email) {
	switch {
	case !e.Confirmed:
		a.EmailConfirmedAt = ""
	case !a.EmailConfirmed || !strings.EqualFold(a.Email, e.Email) || a.EmailConfirmedAt == "":
		a.EmailConfirmedAt = string(ev.Time)
	}
}

func applyAccountTakedown(_ *projections.Writer, _ *eventlog.Event, a *Account, t *events.AccountTakedown) (bool, error) {
	a.TakedownRef = ""
	if t.Applied {
		a.TakedownRef = t.Ref
	}
	return true, nil
}

func applyAccountInvites(_ *projections.Writer, _ *eventlog.Event, a *Account, i *events.AccountInvites) (bool, error) {
	a.InvitesDisabled = i.Disabled
	return true, nil
}
