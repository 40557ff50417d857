package eventlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Permissions of everything pdslog stores: the log and the projections
// hold emails, password hashes and sealed secrets.
const (
	PrivateDirMode  os.FileMode = 0o700
	PrivateFileMode os.FileMode = 0o600
)

// MakePrivate creates dir 0700 if needed and takes group and other
// permissions off it and everything under it (symbolic links are not
// followed), whatever the umask or an earlier version left: stores are
// private however readable the directory they are in. It is for the OS
// filesystem.
func MakePrivate(dir string) error {
	if err := os.MkdirAll(dir, PrivateDirMode); err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (a compaction)
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(path, perm&^0o077); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("make %s private: %w", path, err)
			}
		}
		return nil
	})
}

// StoreFS readies dir for a Pebble store on fs and returns the filesystem
// to open it with. On the OS filesystem (nil or vfs.Default) dir is made
// private (MakePrivate: even if an older version left it open) and the
// filesystem returned keeps what Pebble creates private (PrivateFS); any
// other fs (a test's) is returned as it is. The log, the importer and the
// projection store open through it.
func StoreFS(dir string, fs vfs.FS) (vfs.FS, error) {
	if fs != nil && fs != vfs.Default {
		return fs, nil
	}
	if err := MakePrivate(dir); err != nil {
		return nil, err
	}
	return PrivateFS(fs), nil
}

// PrivateFS wraps the OS filesystem for Pebble: the directories it makes
// are 0700 and the files it creates 0600, whatever the umask (Pebble asks
// for 0755 and 0666). Any other fs is returned as it is.
func PrivateFS(fs vfs.FS) vfs.FS {
	if fs != nil && fs != vfs.Default {
		return fs
	}
	return privateFS{vfs.Default}
}

type privateFS struct{ vfs.FS }

func private(f vfs.File, name string, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	if err := os.Chmod(name, PrivateFileMode); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

func (p privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, category)
	return private(f, name, err)
}

func (p privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, category, opts...)
	return private(f, name, err)
}

func (p privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.ReuseForWrite(oldname, newname, category)
	return private(f, newname, err)
}

func (p privateFS) MkdirAll(dir string, _ os.FileMode) error {
	return p.FS.MkdirAll(dir, PrivateDirMode)
}

func (p privateFS) Unwrap() vfs.FS { return p.FS }

func (p privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err != nil {
		return c, err
	}
	if err := os.Chmod(name, PrivateFileMode); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}
