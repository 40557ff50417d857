package eventlog

// Failure returns the error that stopped the log from accepting writes, or
// nil while it is healthy.
func (l *Log) Failure() error { return l.err() }

// Failed returns a channel that is closed once the log has failed (Failure
// is then non-nil): a supervisor waits on it instead of polling.
func (l *Log) Failed() <-chan struct{} { return l.failedCh }
