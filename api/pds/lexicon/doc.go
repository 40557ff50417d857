// Package lexicon owns the lexicon validation of records before they are
// committed, as the reference PDS (bluesky-social/atproto packages/pds,
// src/repo/prepare.ts) does it for createRecord, putRecord and applyWrites,
// and the lexicon schema files the PDS ships for it.
//
// The schemas are the app.bsky.*, com.atproto.*, chat.bsky.actor.declaration
// and com.germnetwork.declaration lexicons, embedded from lexicons/ (copied
// from the pinned indigo module; see lexicons/README.md). They are loaded
// into an indigo atproto/lexicon catalog, which checks every schema file,
// and New also checks that every ref reachable from a record type resolves.
// The record types among them are exactly the ones the reference PDS
// validates; every other collection is "unknown".
//
// What Validate does, in the reference's order:
//
//   - the record's $type must be the collection (or absent: the commit
//     fills it in), whatever the mode;
//   - ModeSkip (validate: false) stops there and returns no status;
//   - a collection with no record lexicon is accepted as StatusUnknown,
//     or refused under ModeRequire (validate: true) with
//     "Unknown lexicon type: <nsid>";
//   - the record key must fit the lexicon's key type (tid, nsid, any,
//     literal:<value>);
//   - the record must match the schema: strict string formats (datetimes
//     need a timezone, language tags are checked by ../langtag), strict
//     blobs (no legacy blob refs, accept and maxSize enforced), unknown
//     fields allowed, an open union's unlisted $type accepted unvalidated,
//     a closed union's refused, and an object reached by a ref refused if
//     it carries some other $type.
//
// Leaf values (strings, integers, bytes, blobs, ...) are judged by indigo's
// schema types; this package walks objects, arrays, refs and unions itself
// so that the error names the field, in the reference's words:
// "Invalid app.bsky.feed.post record: Record/text must not be longer than
// 300 graphemes". Every validation failure matches ErrInvalidRecord, and its
// Error() text is the message for the XRPC InvalidRequest error.
//
// Records are atproto data as atdata.UnmarshalJSON or atdata.UnmarshalCBOR
// return it: map[string]any, []any, string, int64, bool, nil, atdata.Bytes,
// atdata.CIDLink and atdata.Blob.
//
// Not done here, although the reference does it in the same step: refusing
// legacy blob refs anywhere in a record (also for unknown collections and
// validate: false), which is part of collecting the record's blobs
// (atdata.ExtractBlobs, a Blob with Size < 0 is a legacy ref).
package lexicon
