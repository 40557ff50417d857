// Package mirror projects the log into Cloudflare: rows in a D1 database
// (through its REST API, package d1) and blob bytes in an R2 bucket
// (through its S3 API, package blobstore/s3), so that a Worker can serve
// records, repos and blobs at the edge while pdslog stays the only writer.
// The schema is in the top-level migrations package.
//
// Mirror is a projections.Projection, fed by its own projections.Runner:
//
//   - Its cursor lives in D1 (mirror_state), written by the last statement
//     of the same request (a D1 batch, one transaction) as the rows it
//     covers, and only if it moves forward from the cursor the batch was
//     built on: a wiped database starts again from 0, and a batch built on
//     a cursor D1 no longer has is refused. It is read from D1 at start
//     and after any error, never trusted from memory.
//   - Every row statement is an upsert or delete by natural key, guarded
//     by the seq of the event that last wrote the row, so replaying a
//     batch after a crash (or a request that failed after D1 applied it)
//     changes nothing.
//   - A request holds whole events (a commit too large for one request
//     is split, the cursor riding on its last part), at most
//     Options.MaxStatements statements of at most 100 parameters and
//     100 KB each; consecutive rows of one kind share a multi-row
//     statement. Values over Options.InlineLimit (a huge block) go to R2
//     as blockstore/DID/CID, the row holding only the key.
//   - Blobs go to R2 as blobs/DID/CID before the request whose rows name
//     them (an object already there is success: keys are content
//     addressed). A blob whose bytes the local store no longer has (the
//     collector got there first) is not uploaded: the blob.deleted event
//     that follows removes its row.
//   - R2 objects whose rows are deleted (blob.deleted, a deleted account)
//     are listed in r2_trash by the same request that deletes the rows,
//     deleted from R2 right after it commits, then unlisted; a crash in
//     between is finished at the next start, before anything is uploaded.
//
// Mirrored: #commit (records as atproto JSON, blocks, the commit log,
// blob usage), #sync (repo head, blocks, the sync log), #identity and
// #account (account state; a deleted account's rows and objects are
// removed), and of the private events only the blobs projection's
// blob.uploaded, blob.deleted and blob.quarantine, record.takedown
// (record_takedown: applied to a record the repo holds, ended by its
// reversal, the record's deletion or the account's; a database mirrored
// before migration 0003 reads the log again for them, backfill.go), and
// the public half of each repo signing key (signing_key; the private key
// in the event is not mirrored). Secrets, sessions and every other private
// event are never mirrored.
//
// The Worker in the worker directory serves reads from these rows and
// objects (see its README).
package mirror
