// Package identity resolves atproto identities for the PDS: DID documents
// of did:plc (through a PLC directory, sub-package plc) and did:web (over
// HTTPS), cached as the reference PDS caches them. Directory is the seam:
// Resolver talks to the network, MockDirectory answers from memory, so
// tests of code that resolves DIDs need no server.
package identity
