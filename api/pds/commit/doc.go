// Package commit turns record writes into a signed repo commit, exactly as
// the atproto repo spec (v3) and sync v1.1 define it, and returns it as the
// #commit event to append to the log.
//
// Build loads the repo's MST lazily from block storage at the head's root,
// applies the writes (records encoded to DAG-CBOR, $type checked against the
// collection), computes the new root once, signs the v3 commit
// {did, version: 3, data, rev, prev: null, sig} with the account's key, and
// packs the commit block, the new records, the new MST nodes and the proof
// nodes a consumer needs to invert the ops into the event's CAR slice.
// Every limit relays enforce is checked before anything is returned: at most
// MaxOps ops, records of at most MaxRecordBytes, a CAR slice of at most
// MaxBlocksBytes, and a rev greater than the last and not ahead of the clock
// by more than MaxClockSkew.
package commit
