// Package events is the catalogue of pdslog's private event types: every
// payload a KindPrivate event of the log can carry, with its type name, its
// secrecy and its encoding, in one place.
//
// The public kinds (#commit, #sync, #identity, #account) are eventlog's own
// CBOR types (eventlog/event.go), pinned by eventlog's golden files. The
// private kinds never leave the server (the firehose skips them): they hold
// account state (credentials, sessions, app passwords, invites,
// preferences), blob bookkeeping and repo signing keys. Projections decode
// them; the write side (api/pds) creates them with [New] only, so a type
// name can never disagree with its payload.
//
// # The contract
//
// A log written today must be read by every later pdslog, so a payload's
// encoding is frozen once shipped: fields may be added (decoders ignore
// unknown ones, old events lack new ones), never renamed, retyped or
// repurposed; a type name is never reused. testdata/<type>.golden holds the
// exact bytes [New] writes for a fixed payload of each type, and the golden
// test requires that they still decode to that payload and that New still
// writes them (go test -run Golden -update rewrites them: only for a new
// type, never for a shipped one).
//
// Payloads are JSON, except [SigningKey], whose data is the private key in
// multibase form. [Payload.Secret] types are sealed at rest by the log
// (eventlog's seal key).
//
// The package lives below eventlog because the log defines what an event
// is; it imports nothing above the log, and every layer that reads or writes
// private events imports it.
package events
