package pds

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Data directory layout.
const (
	LogDir          = "eventlog"              // the source of truth: back this up, with keys/
	ProjectionsDir  = "projections"           // rebuildable from the log by `pdslog replay`
	BlobsDir        = "blobs"                 // blob bytes, when they are stored on disk
	SealKeyPath     = "keys/seal.key"         // at-rest key for secrets in the log (0600)
	JWTSecretPath   = "keys/jwt.secret"       // signs session tokens, unless set (0600)
	RotationKeyPath = "keys/plc-rotation.key" // signs PLC operations, unless set (0600)
	LockFile        = "pdslog.lock"           // held by the process that has the dir open
)

// ErrInUse is returned by Open when another process holds the data dir.
var ErrInUse = errors.New("pds: data dir in use")

// lockDataDir takes an exclusive, non-blocking flock on the data dir's lock
// file and records who holds it. The kernel drops the lock when the process
// dies, so a crash never leaves the directory locked.
func lockDataDir(dir, command string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pds: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("%w: data dir %s is in use by %s; stop it first", ErrInUse, dir, who)
		}
		return nil, fmt.Errorf("pds: lock data dir: %w", err)
	}
	_ = f.Chmod(0o600) // an older version's may be 0644
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pdslog %s (pid %d)\n", command, os.Getpid())), 0)
	return f, nil
}
