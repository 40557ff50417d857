package eventlog

import (
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// Test-only exports for the external test package.

// EncodedSize is the stored size of ev (format byte included), for the
// benchmarks that size their events.
func EncodedSize(ev *Event) int {
	v, err := encodeValue(ev)
	if err != nil {
		panic(err)
	}
	return len(v)
}

// WrapFS is errorfs.Wrap(fs, inj) that also covers recycled files:
// errorfs.FS.ReuseForWrite hands back the underlying file unwrapped, so
// once Pebble recycles an old WAL its writes and syncs would escape inj.
func WrapFS(fs vfs.FS, inj errorfs.Injector) vfs.FS {
	return reuseFS{errorfs.Wrap(fs, inj), inj}
}

type reuseFS struct {
	*errorfs.FS
	inj errorfs.Injector
}

func (fs reuseFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return nil, err
	}
	return &injFile{File: f, path: newname, inj: fs.inj}, nil
}

// injFile consults inj before writes and syncs, naming the file by path.
type injFile struct {
	vfs.File
	path string
	inj  errorfs.Injector
}

func (f *injFile) maybe(k errorfs.OpKind, off int64) error {
	return f.inj.MaybeError(errorfs.Op{Kind: k, Path: f.path, Offset: off})
}

func (f *injFile) Write(p []byte) (int, error) {
	if err := f.maybe(errorfs.OpFileWrite, 0); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *injFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.maybe(errorfs.OpFileWriteAt, off); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *injFile) Sync() error {
	if err := f.maybe(errorfs.OpFileSync, 0); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *injFile) SyncData() error {
	if err := f.maybe(errorfs.OpFileSyncData, 0); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *injFile) SyncTo(length int64) (bool, error) {
	if err := f.maybe(errorfs.OpFileSyncTo, 0); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}
