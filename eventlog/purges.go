package eventlog

// Purges returns how many Purge calls have completed since the log was
// opened. It moves once a purge's tombstones are durable and before Purge
// returns, so a reader that cached events (or frames made from them) and
// sees the count unchanged since it read them knows none was purged
// meanwhile; when it moves, anything cached may have been purged.
func (l *Log) Purges() uint64 { return l.purges.Load() }

// notePurge counts a durable purge.
func (l *Log) notePurge() { l.purges.Add(1) }
