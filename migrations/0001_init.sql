-- The mirror of pdslog in Cloudflare D1: the log projected into rows (see
-- projections/mirror). Table and column names follow the Workers-native
-- PDS schema: seq columns hold the log seq that last wrote a row, and
-- guard every write so that replaying events changes nothing.
-- Apply with `pdslog mirror` (it applies pending files in order) or with
-- `wrangler d1 migrations apply DB --remote`: both record them in
-- d1_migrations.

-- How far each mirror has applied the log: cursor is the last applied
-- seq, head the head of the log the mirror knew when it wrote that batch.
CREATE TABLE IF NOT EXISTS mirror_state (
  name       TEXT PRIMARY KEY NOT NULL,
  cursor     INTEGER NOT NULL,
  head       INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT NOT NULL
);

-- Status of hosted accounts (from #identity and #account events).
CREATE TABLE IF NOT EXISTS account_state (
  did        TEXT PRIMARY KEY NOT NULL,
  handle     TEXT,
  active     INTEGER NOT NULL DEFAULT 1,
  status     TEXT,
  created_at INTEGER NOT NULL, -- unix ms of the first event seen
  seq        INTEGER NOT NULL
);

-- The head of each repo (from #commit and #sync events).
CREATE TABLE IF NOT EXISTS repo_root (
  did        TEXT PRIMARY KEY NOT NULL,
  commit_cid TEXT NOT NULL,
  rev        TEXT NOT NULL,
  data_cid   TEXT NOT NULL,
  seq        INTEGER NOT NULL
);

-- Current records. json is the record in the atproto JSON form, NULL when it
-- is too large for a D1 value: then read the block of the record (blockstore).
CREATE TABLE IF NOT EXISTS record (
  uri        TEXT PRIMARY KEY NOT NULL,
  did        TEXT NOT NULL,
  cid        TEXT NOT NULL,
  json       TEXT,
  created_at INTEGER DEFAULT 0, -- unix ms of the commit that created it
  seq        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS record_did_idx ON record (did);
CREATE INDEX IF NOT EXISTS record_cid_idx ON record (cid);

-- Uploaded blobs: key is the R2 object of the blob, blobs/DID/CID.
CREATE TABLE IF NOT EXISTS blob (
  cid         TEXT NOT NULL,
  did         TEXT NOT NULL,
  key         TEXT NOT NULL,
  mime        TEXT NOT NULL,
  size        INTEGER NOT NULL,
  uploaded_at INTEGER NOT NULL DEFAULT 0, -- unix ms
  quarantined INTEGER NOT NULL DEFAULT 0, -- taken down: not to be served
  seq         INTEGER NOT NULL,
  PRIMARY KEY (did, cid)
);
CREATE INDEX IF NOT EXISTS blob_key_idx ON blob (key);

-- Which current record references which blob (key as in blob).
CREATE TABLE IF NOT EXISTS blob_usage (
  did        TEXT NOT NULL,
  record_uri TEXT NOT NULL,
  key        TEXT NOT NULL,
  cid        TEXT NOT NULL,
  repo_rev   TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  PRIMARY KEY (did, record_uri, key)
);
CREATE INDEX IF NOT EXISTS blob_usage_record_uri_idx ON blob_usage (did, record_uri);
CREATE INDEX IF NOT EXISTS blob_usage_did_key_idx ON blob_usage (did, key);

-- Every #commit: data is the signed commit object as JSON, sig its
-- signature (base64), ts the time of the event (unix ms).
CREATE TABLE IF NOT EXISTS commit_log (
  seq  INTEGER PRIMARY KEY,
  did  TEXT NOT NULL,
  cid  TEXT NOT NULL,
  rev  TEXT NOT NULL,
  data TEXT NOT NULL,
  sig  TEXT NOT NULL,
  ts   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS commit_log_did_idx ON commit_log (did, seq);

-- Every repo block (signed commits, records, MST nodes) by CID: bytes is
-- the block, base64, and a block too large for a D1 value has bytes NULL and
-- lives in R2 under key (blockstore/DID/CID).
CREATE TABLE IF NOT EXISTS blockstore (
  did   TEXT NOT NULL,
  cid   TEXT NOT NULL,
  bytes TEXT,
  key   TEXT,
  seq   INTEGER NOT NULL,
  PRIMARY KEY (did, cid)
);
CREATE INDEX IF NOT EXISTS blockstore_cid_idx ON blockstore (cid);

-- R2 objects (or prefixes, ending in a slash) whose rows are gone: the mirror
-- deletes them from R2 after the batch that removed the rows, then the
-- entries. A crash in between is finished on the next start.
CREATE TABLE IF NOT EXISTS r2_trash (
  key TEXT PRIMARY KEY NOT NULL,
  seq INTEGER NOT NULL
);
