-- What the Worker that serves reads from the mirror (projections/mirror/worker)
-- needs beyond 0001: the public signing key of each account, the history of
-- #sync events beside commit_log, and indexes for its lookups.

-- The public key each account signs its repo with, as a multibase string
-- (the publicKeyMultibase of its DID document), from the latest signing key
-- event. Only the public half is derived and stored: the private key is never
-- mirrored. describeRepo serves it.
CREATE TABLE IF NOT EXISTS signing_key (
  did        TEXT PRIMARY KEY NOT NULL,
  public_key TEXT NOT NULL,
  seq        INTEGER NOT NULL
);

-- Every #sync event (a repo reset to a new tree). With commit_log it is the
-- history of repo heads that getRepo with since reads.
CREATE TABLE IF NOT EXISTS sync_log (
  seq      INTEGER PRIMARY KEY,
  did      TEXT NOT NULL,
  cid      TEXT NOT NULL,
  rev      TEXT NOT NULL,
  data_cid TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_log_did_idx ON sync_log (did, seq);
CREATE INDEX IF NOT EXISTS sync_log_did_rev_idx ON sync_log (did, rev);

-- getRepo since: the last head at or before a rev.
CREATE INDEX IF NOT EXISTS commit_log_did_rev_idx ON commit_log (did, rev);

-- Handles resolve case-insensitively, as pdslog resolves them.
CREATE INDEX IF NOT EXISTS account_state_handle_idx ON account_state (handle COLLATE NOCASE);
