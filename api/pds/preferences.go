package pds

import (
	"context"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/eventlog/events"
)

// PutPreferences replaces did's stored preferences (checked by the caller
// against the lexicon and the session's rights): put.Values in order,
// after the stored ones whose $type put.Keep lists.
func (p *PDS) PutPreferences(ctx context.Context, did syntax.DID, put events.PreferencesPut) error {
	ev, err := events.New(did, &put)
	if err != nil {
		return err
	}
	_, err = p.commit(ctx, ev)
	return err
}
