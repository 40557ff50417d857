package backup

import (
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
)

// BlobsOfEvent is the default BlobEvents: it reads the blob bookkeeping
// events of the catalogue (events.BlobUploaded, events.BlobDeleted).
func BlobsOfEvent(ev *eventlog.Event) (uploaded, deleted []BlobRef) {
	if ev.Private == nil || ev.Private.Secret {
		return nil, nil
	}
	var c string
	switch ev.Private.Type {
	case events.TypeBlobUploaded:
		var p events.BlobUploaded
		if events.Unmarshal(ev.Private.Data, &p) != nil {
			return nil, nil
		}
		c = p.CID
	case events.TypeBlobDeleted:
		var p events.BlobDeleted
		if events.Unmarshal(ev.Private.Data, &p) != nil {
			return nil, nil
		}
		c = p.CID
	default:
		return nil, nil
	}
	parsed, err := cid.Parse(c)
	if err != nil {
		return nil, nil
	}
	ref := []BlobRef{{DID: ev.DID, CID: parsed}}
	if ev.Private.Type == events.TypeBlobUploaded {
		return ref, nil
	}
	return nil, ref
}
