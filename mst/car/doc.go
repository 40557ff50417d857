// Package car reads and writes CAR v1 files (Content Addressable aRchives),
// the block container of the AT Protocol: firehose #commit "blocks",
// com.atproto.sync.getRepo / getBlocks / getRecord responses, and
// com.atproto.repo.importRepo uploads.
//
// What the package owns:
//
//   - The CAR v1 wire format and nothing above it: a varint-length-prefixed
//     DAG-CBOR header {roots: [CID...], version: 1}, then sections of
//     varint(len(cid)+len(data)) ‖ cid ‖ data. It knows nothing of commits,
//     MST nodes or records; callers walk the tree and Put the blocks.
//   - Streaming in both directions. Writer writes straight through to its
//     io.Writer behind one bounded buffer (BufferSize bytes) and never keeps
//     blocks, CIDs or an index, so a full repository export runs in constant
//     memory; Marshal is the small in-memory variant for firehose slices.
//     Reader holds one block at a time; every block it returns is a fresh
//     slice the caller owns.
//   - Safety on untrusted input. Every length read from the input is checked
//     against a limit (ReaderOptions: header size, block size, total bytes,
//     block count) before anything is allocated for it; varints must be
//     minimal and fit 63 bits; the header is decoded by a strict, bounded
//     DAG-CBOR reader (a map of exactly "roots" and "version", definite
//     lengths, minimal integers, no unknown keys); truncation anywhere but a
//     section boundary is an error, never a clean EOF; zero-length sections
//     are rejected. By default every CID (roots included) must be an atproto
//     CID — CIDv1, dag-cbor or raw codec, sha2-256 — and every block must hash
//     to its CID. All errors are sentinel values prefixed "car:" (match them
//     with errors.Is); after an error a Reader keeps returning it.
//
// Why not github.com/ipld/go-car: v1 (what indigo's LoadRepoFromCAR uses) has
// one process-global section limit, no total/count limits, no CID policy,
// rejects CARs without roots, and its writer walks a merkledag (sections
// otherwise have to be hand-rolled with util.LdWrite); v2's BlockReader has
// per-reader header/section limits but silently accepts CARv2 containers (and
// skips arbitrary DataOffsets to reach the payload), has no total/count
// limits, no CID policy and string-only errors, and its streaming writer
// (storage.NewWritable) keeps an in-memory index of every CID written. The
// format is small enough that owning it is cheaper than wrapping either; the
// tests check byte-for-byte and block-for-block compatibility with both go-car
// versions and with indigo's repo loader.
package car
