// Package firehose serves com.atproto.sync.subscribeRepos: the repo event
// stream relays crawl, read straight from the event log.
//
// It owns these things:
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
//     over the log. It sends every public event's frame after its own
//     position, in seq order, and waits for more; there is no separate live
//     channel, so there is no replay/live crossover to get wrong. Private
//     and tombstone events are skipped (firehose seqs are not dense).
//     Nothing is buffered per subscriber beyond one small batch of frames.
//   - the shared tail (ring.go): one goroutine per Handler, started with
//     the first subscriber and stopped by Shutdown, follows the log (Iter
//     and Wait, so never past the durable head) and publishes every seq's
//     frame (or "nothing to send") into a ring bounded in seqs and bytes.
//     A subscriber whose position is inside the ring takes its frames from
//     it without touching Pebble or decoding; one behind it (replaying, or
//     fallen back) or ahead of it reads the log itself and joins the ring
//     when it reaches it. Both paths move by seq and serve the same bytes,
//     so the hand-off has no gap and no duplicate. Frames are encoded once,
//     through a small cache keyed by seq shared by the tail and log readers
//     (cache.go). The ring remembers the log's purge count
//     (eventlog.Log.Purges) it was filled under and empties itself when
//     that moves, so no frame of a purged event is served from memory once
//     the purge is durable; log readers see the tombstones.
//   - batched writes (cork.go): each connection is hijacked through a
//     "corked" net.Conn. A subscriber corks it while it writes the batch
//     of frames it has ready and uncorks it after, so the batch costs one
//     write syscall (coder/websocket flushes every message); control frames
//     written meanwhile by coder/websocket's read goroutine go out with the
//     batch, and at once when not corked. The flush has the WriteTimeout
//     deadline, so a client that stopped reading is still dropped.
//
// Cursor rules follow the reference PDS: no cursor means live from the
// current head; a cursor at or below the head replays from cursor+1 and
// then follows live; a cursor past the head gets a FutureCursor error
// frame; with a backfill window, a cursor older than the window gets an
// #info OutdatedCursor frame and starts at the first event inside it
// (window.go). A subscriber that has caught up once and then falls more
// than MaxLag events behind (the log's head, or the ring's newest seq when
// it reads from the ring), or whose write does not complete within
// WriteTimeout, gets ConsumerTooSlow and is closed.
package firehose
