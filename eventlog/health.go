package eventlog

// Failure returns the error that stopped the log from accepting writes, or
// nil while it is healthy.
func (l *Log) Failure() error { return l.err() }
