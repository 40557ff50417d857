// Package dir is the objstore.Store in a local directory: each object is
// a file at its key's path, written to a temp file beside it, synced and
// renamed into place (then the directory is synced), so a crash leaves the
// old object or the new one, never part of one. Temp files start with
// ".tmp-" and are never listed. A backup on another disk or a mounted
// network filesystem; and what tests use beside the S3 backend.
package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pdslog/pdslog/eventlog/backup/objstore"
)

const tempPrefix = ".tmp-"

// Store is an objstore.Store under a root directory.
type Store struct{ root string }

var _ objstore.Store = (*Store)(nil)

// New returns the store rooted at root, creating the directory.
func New(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("objstore/dir: %w", err)
	}
	return &Store{root: root}, nil
}

func (s *Store) path(key string) (string, error) {
	if err := objstore.CheckKey(key); err != nil {
		return "", err
	}
	if strings.HasPrefix(filepath.Base(key), tempPrefix) {
		return "", fmt.Errorf("%w: %q", objstore.ErrBadKey, key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements objstore.Store.
func (s *Store) Put(ctx context.Context, key string, r io.ReadSeeker, size int64) (err error) {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("objstore/dir: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("objstore/dir: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, io.LimitReader(ctxReader{ctx, r}, size+1))
	if err != nil {
		return fmt.Errorf("objstore/dir: put %s: %w", key, err)
	}
	if n != size {
		return fmt.Errorf("objstore/dir: put %s: %d bytes, want %d", key, n, size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("objstore/dir: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("objstore/dir: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("objstore/dir: %w", err)
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", objstore.ErrNotExist, key)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore/dir: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%w: %s", objstore.ErrNotExist, key)
	}
	return f, nil
}

// GetRange implements objstore.Store.
func (s *Store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("objstore/dir: range %d+%d", off, n)
	}
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, n)
	k, err := rc.(*os.File).ReadAt(buf, off)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("objstore/dir: %w", err)
	}
	return buf[:k], nil
}

// List implements objstore.Store. It reads the names under the deepest
// directory the prefix names, then sorts them: a directory walk's order is
// not the keys' byte order ('/' sorts after '-').
func (s *Store) List(ctx context.Context, prefix, after string, fn func(objstore.Object) error) error {
	base := s.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		base = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	var objs []objstore.Object
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) || key <= after {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted meanwhile
			}
			return err
		}
		objs = append(objs, objstore.Object{Key: key, Size: info.Size(), Modified: info.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("objstore/dir: list: %w", err)
	}
	slices.SortFunc(objs, func(a, b objstore.Object) int { return strings.Compare(a.Key, b.Key) })
	for _, o := range objs {
		if err := fn(o); err != nil {
			if errors.Is(err, objstore.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore/dir: %w", err)
	}
	return nil
}
