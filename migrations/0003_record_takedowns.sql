-- Record takedowns (com.atproto.admin.updateSubjectStatus with a strongRef):
-- a record taken down stays in the repo (record, blockstore, sync reads) but
-- getRecord and listRecords do not serve it. A row here is a takedown in
-- force, from the record.takedown event of seq, removed by its reversal, by
-- the deletion of the record (a record made again at the path is served) and
-- with a deleted account, as pdslog keeps it beside the record. The
-- moderator reference is not mirrored: the Worker needs only the fact.
CREATE TABLE IF NOT EXISTS record_takedown (
  uri TEXT PRIMARY KEY NOT NULL,
  did TEXT NOT NULL,
  seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS record_takedown_did_idx ON record_takedown (did);

-- A mirror already past the start of the log when this file is applied has
-- passed takedowns it did not mirror. It reads the log again from 0 up to
-- upto (its cursor then) for the takedown rows alone, cursor being how far it
-- got, and removes its row when done. While the row is here the Worker sends
-- getRecord and listRecords to the origin.
CREATE TABLE IF NOT EXISTS mirror_backfill (
  name   TEXT PRIMARY KEY NOT NULL,
  upto   INTEGER NOT NULL,
  cursor INTEGER NOT NULL
);
INSERT INTO mirror_backfill (name, upto, cursor) SELECT name, cursor, 0 FROM mirror_state WHERE cursor > 0;
