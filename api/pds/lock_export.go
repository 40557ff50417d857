package pds

import "io"

// Lock takes the data dir's lock as Open does, without opening anything:
// for a command that must write into dir before it can be opened (restore
// writes the log and keys first). A held dir gives ErrInUse.
func Lock(dir, command string) (io.Closer, error) { return lockDataDir(dir, command) }
