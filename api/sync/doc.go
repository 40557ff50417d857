// Package sync serves the com.atproto.sync read methods a relay or a
// migrating client uses to copy repos out of this PDS, one file per method:
// getRepo (a CAR export, whole or the blocks written since a rev),
// getBlocks, getRecord (a record with its MST proof), getLatestCommit,
// getRepoStatus and listRepos. The firehose (subscribeRepos) is package
// firehose; the blob methods are package blob.
//
// Everything is read from the log's repo heads (eventlog.Log.RepoHead) and
// the blocks and repos projections, after the projections have caught up
// with the head being served, so a read never sees a head whose blocks are
// not stored yet.
//
// # Availability
//
// A repo that is not active answers the lexicon's RepoDeactivated,
// RepoSuspended or RepoTakendown (400, as the reference PDS), except to its
// owner (a caller authenticated as the repo's DID) and to the admin (HTTP
// basic admin:PASSWORD). A deleted repo is gone: RepoNotFound for everyone.
// getRepoStatus and listRepos report the status instead of refusing.
// Because the sync methods take HTTP basic admin credentials, their routes
// declare the optionalOrAdmin policy (api/routes.go): basic credentials
// reach these handlers, which check them.
//
// # getRepo since
//
// With since, getRepo sends the current commit and every block of the
// current repo that was written after that rev: blocks that came back
// (a record deleted and re-created, and the MST nodes above it) are sent
// even though an identical block existed before since. The added blocks of
// each commit after since are recomputed by replaying the commit's ops on
// its parent tree (the commit's CAR slice also carries unchanged proof
// blocks, which are not "written"); the current tree is then walked from
// the root, entering only nodes in that set, since a node not written after
// since has a whole subtree that was not either. A since older than the
// repo's first commit, or a #sync that reset the repo to another tree after
// since, gives the whole repo. The one known excess: a record whose exact
// bytes were already stored under another key before since is re-sent when
// written under a new key.
//
// Memory: a whole export streams with one tree path and one CAR buffer; a
// since export also holds the set of CIDs written after since.
package sync
