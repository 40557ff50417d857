package pds

import (
	"context"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog/events"
)

// PutPreferences replaces did's stored preferences (checked by the caller
// against the lexicon and the session's rights): put.Values in order,
// after the stored ones whose $type put.Keep lists. A taken-down account
// cannot (the reference's checkTakedown); a deactivated one can.
func (p *PDS) PutPreferences(ctx context.Context, did syntax.DID, put events.PreferencesPut) error {
	unlock := p.Lock(did)
	defer unlock()
	if _, err := p.changeable(ctx, did); err != nil {
		return err
	}
	ev, err := events.New(did, &put)
	if err != nil {
		return err
	}
	_, err = p.commit(ctx, ev)
	return err
}
