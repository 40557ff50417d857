// Package projections derives all of pdslog's state except the log itself.
//
// A Projection consumes the event log in seq order and keeps its cursor
// ("last applied seq") beside its effects, written atomically in one batch,
// so a crash can never separate them and re-applying old seqs is a no-op.
// Local projections live in one Pebble store (Store), each in its own key
// space, separate from the log's directory: dropping the store or one space
// never touches the truth, and `pdslog replay` rebuilds it.
//
// The Runner feeds projections from their cursors: Run follows the log live,
// CatchUp(seq) lets a write handler return read-your-writes, and Rebuild
// resets a projection and replays it from zero.
package projections
