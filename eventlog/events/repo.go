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
