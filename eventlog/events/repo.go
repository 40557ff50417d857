package events

// TypeRepoImported marks the end of a repo import (importRepo): the
// imported repo was verified and is now the account's, through the
// ordinary #commit events that precede this marker in the log — the
// creates, updates and deletes that turned the previous repo into the
// imported one, signed by this PDS with the account's key, each within the
// limits relays enforce — and the #sync of the resulting head appended with
// it. The marker records where the repo came from.
const TypeRepoImported = "repo.imported" // RepoImported

// RepoImported is an import's provenance.
type RepoImported struct {
	Commit  string `json:"commit"`  // CID of the imported commit (signed by the previous host)
	Rev     string `json:"rev"`     // its rev
	Data    string `json:"data"`    // its MST root: the account's data root after the import
	Records int    `json:"records"` // records in the imported repo
	Commits int    `json:"commits"` // commits this PDS appended to reach it
	Head    string `json:"head"`    // CID of the last of them: the head the #sync announces
}

func (*RepoImported) Type() string { return TypeRepoImported }
func (*RepoImported) Secret() bool { return false }

// Key reservation and scheduled deletion (account migration).
const (
	TypeKeyReserved       = "key.reserved"         // KeyReserved (secret)
	TypeDeletionScheduled = "account.delete_after" // DeletionScheduled
)

// KeyReserved is a repo signing key made ahead of the account it is for
// (reserveSigningKey): the event's DID is that account's DID, or the key's
// own did:key when none was given. Key is the private key, multibase.
type KeyReserved struct {
	Key string `json:"key"`
}

// DeletionScheduled records when a deactivated account is to be deleted
// (deactivateAccount's deleteAfter); activation cancels it.
type DeletionScheduled struct {
	At string `json:"at"` // RFC 3339
}

func (*KeyReserved) Type() string       { return TypeKeyReserved }
func (*DeletionScheduled) Type() string { return TypeDeletionScheduled }
func (*KeyReserved) Secret() bool       { return true }
func (*DeletionScheduled) Secret() bool { return false }
