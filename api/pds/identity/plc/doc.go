// Package plc builds, signs and submits did:plc operations, and reads DIDs
// back from a PLC directory (https://plc.directory by default).
//
// The operation format is the did:plc spec's (v0.1): an [Op] of type
// "plc_operation" carries the DID's rotation keys, verification methods,
// alsoKnownAs URIs and services, plus prev (the CID of the operation it
// follows, empty for a genesis operation) and sig: the base64url (no
// padding) signature, by one of the rotation keys, over the DAG-CBOR
// encoding of the operation without its sig. A genesis operation names its
// DID: "did:plc:" and the first 24 characters of the lower-case base32 of
// the SHA-256 of the signed operation's DAG-CBOR ([GenesisDID]).
//
// [CreateGenesis] makes a new account's genesis operation, [UpdateOp] the
// next operation of an existing DID, and [Client] talks to a directory:
// [Client.Submit], [Client.Resolve], [Client.GetData], [Client.GetLastOp],
// [Client.GetAuditLog] and [Client.UpdateHandle].
//
// Keys are indigo's atcrypto keys (K-256 or P-256), named in operations by
// their did:key strings. DAG-CBOR is encoded with indigo's atdata.
//
// The tests run against a real PLC directory (the reference
// implementation, started by package
// github.com/pdslog/pdslog/api/apitest/plcserver).
package plc
