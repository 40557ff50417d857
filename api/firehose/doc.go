// Package firehose serves com.atproto.sync.subscribeRepos: the repo event
// stream relays crawl, read straight from the event log.
//
// It owns two things:
//
//   - the wire format (frames.go): one public eventlog.Event becomes one
//     binary websocket message, a DAG-CBOR header ({op, t}) followed by a
//     DAG-CBOR body. Bodies are indigo's generated lexicon types
//     (comatproto.SyncSubscribeRepos_*) and their MarshalCBOR; the two-key
//     header and the error body are written here, byte for byte as
//     indigo's events.EventHeader and events.ErrorFrame encode them (the
//     tests pin it), so the server does not link indigo's relay package. A
//     frame depends only on its event, so the bytes for a seq are the same
//     live and replayed.
//   - the subscription (subscribe_repos.go): each subscriber is a cursor
//     reader over the log. It iterates the log from its own position,
//     sends every public event's frame, and waits on the log for more;
//     there is no separate live channel, so there is no replay/live
//     crossover to get wrong. Private and tombstone events are skipped
//     (firehose seqs are not dense). Nothing is buffered per subscriber
//     beyond one small batch of frames; frames are shared across
//     subscribers through a small cache keyed by seq (cache.go).
//
// Cursor rules follow the reference PDS: no cursor means live from the
// current head; a cursor at or below the head replays from cursor+1 and
// then follows live; a cursor past the head gets a FutureCursor error
// frame; with a backfill window, a cursor older than the window gets an
// #info OutdatedCursor frame and starts at the first event inside it
// (window.go). A subscriber that has caught up once and then falls more
// than MaxLag events behind, or whose write does not complete within
// WriteTimeout, gets ConsumerTooSlow and is closed.
package firehose
