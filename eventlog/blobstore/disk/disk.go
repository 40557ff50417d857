package disk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/eventlog/blobstore"
)

const (
	dirMode = 0o700
	// putPrefix and delPrefix name this package's temp files (Puts) and
	// directories (accounts being deleted); Open removes leftovers with
	// these prefixes only, so the temp directory may be shared.
	putPrefix = "blobstore-put-"
	delPrefix = "blobstore-del-"
)

// Options configure a Store. A nil *Options means the defaults.
type Options struct {
	// TempDir holds Puts in flight; it must be on the store's filesystem.
	// "" means <dir>/tmp. (PDS_BLOBSTORE_DISK_TMP_LOCATION)
	TempDir string
}

// Store is a blobstore.Store in a directory.
type Store struct {
	dir string
	tmp string
}

var _ blobstore.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir, made private (0700),
// checks that the temp directory is on the same filesystem, and removes
// temp files a crash left.
func Open(dir string, opts *Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("blobstore/disk: no directory")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blobstore/disk: %w", err)
	}
	s := &Store{dir: dir, tmp: filepath.Join(dir, "tmp")}
	if opts != nil && opts.TempDir != "" {
		if s.tmp, err = filepath.Abs(opts.TempDir); err != nil {
			return nil, fmt.Errorf("blobstore/disk: %w", err)
		}
	}
	for _, d := range []string{s.dir, s.tmp} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("blobstore/disk: %w", err)
		}
	}
	// An existing store directory keeps its mode: make it private (what is
	// below was made 0700/0600, and is out of reach through it). A temp
	// directory elsewhere is the operator's (its files are 0600); one
	// inside the store is private too.
	private := []string{s.dir}
	if rel, err := filepath.Rel(s.dir, s.tmp); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		private = append(private, s.tmp)
	}
	for _, d := range private {
		if err := os.Chmod(d, dirMode); err != nil {
			return nil, fmt.Errorf("blobstore/disk: %w", err)
		}
	}
	if err := s.cleanTemp(); err != nil {
		return nil, err
	}
	if err := s.probeRename(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// cleanTemp removes the temp files and directories of Puts and account
// deletions a crash interrupted.
func (s *Store) cleanTemp() error {
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("blobstore/disk: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), putPrefix) || strings.HasPrefix(e.Name(), delPrefix) {
			if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
				return fmt.Errorf("blobstore/disk: clean temp: %w", err)
			}
		}
	}
	return nil
}

// probeRename checks that a temp file can be renamed into the store (the
// same filesystem), so a misconfigured TempDir fails at start, not on the
// first upload.
func (s *Store) probeRename() error {
	f, err := os.CreateTemp(s.tmp, putPrefix+"probe-*")
	if err != nil {
		return fmt.Errorf("blobstore/disk: temp dir: %w", err)
	}
	f.Close()
	dst := filepath.Join(s.dir, filepath.Base(f.Name()))
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("blobstore/disk: temp dir %s must be on the filesystem of %s: %w", s.tmp, s.dir, err)
	}
	return os.Remove(dst)
}

// accountDir returns the directory of did's blobs and its shard directory.
func (s *Store) accountDir(did syntax.DID) (acct, shard string, err error) {
	if err := blobstore.CheckDID(did); err != nil {
		return "", "", err
	}
	name := EncodeDID(string(did))
	if len(name) > maxName {
		return "", "", fmt.Errorf("blobstore/disk: DID %q is too long for a file name", string(did))
	}
	sum := sha256.Sum256([]byte(did))
	shard = filepath.Join(s.dir, hex.EncodeToString(sum[:1]))
	return filepath.Join(shard, name), shard, nil
}

// blobPath returns the file of did's blob c and its account directory.
func (s *Store) blobPath(did syntax.DID, c cid.Cid) (file, acct, shard string, err error) {
	if err := blobstore.CheckKey(did, c); err != nil {
		return "", "", "", err
	}
	if acct, shard, err = s.accountDir(did); err != nil {
		return "", "", "", err
	}
	return filepath.Join(acct, c.String()), acct, shard, nil
}

// Put implements blobstore.Store.
func (s *Store) Put(ctx context.Context, did syntax.DID, c cid.Cid, r io.Reader, size int64) (err error) {
	file, acct, shard, err := s.blobPath(did, c)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("blobstore/disk: put %s: negative size %d", c, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}
	if _, err := os.Lstat(file); err == nil {
		return nil // already stored
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}

	f, err := os.CreateTemp(s.tmp, putPrefix+"*")
	if err != nil {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// A file source goes through (*os.File).ReadFrom as a LimitedReader of
	// a file, which copies in the kernel (copy_file_range); ctx is checked
	// before and after. Any other reader is checked between reads.
	src := r
	if _, ok := r.(*os.File); !ok {
		src = blobstore.ContextReader(ctx, r)
	}
	n, err := io.Copy(f, io.LimitReader(src, size+1))
	if err != nil {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}
	if n != size {
		if n > size {
			return fmt.Errorf("blobstore/disk: put %s: %w: more than %d bytes", c, blobstore.ErrSize, size)
		}
		return fmt.Errorf("blobstore/disk: put %s: %w: %d bytes, want %d", c, blobstore.ErrSize, n, size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}
	if err := s.ensureDir(shard, acct); err != nil {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}
	if err := os.Rename(f.Name(), file); err != nil {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}
	if err := syncDir(acct); err != nil {
		return fmt.Errorf("blobstore/disk: put %s: %w", c, err)
	}
	return nil
}

// ensureDir creates the shard and account directories if missing, syncing
// the parent of each one it creates so the entries survive a crash.
func (s *Store) ensureDir(shard, acct string) error {
	if _, err := os.Stat(acct); err == nil {
		return nil
	}
	for _, d := range []struct{ dir, parent string }{{shard, s.dir}, {acct, shard}} {
		err := os.Mkdir(d.dir, dirMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := syncDir(d.parent); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open implements blobstore.Store.
func (s *Store) Open(ctx context.Context, did syntax.DID, c cid.Cid, off, n int64) (io.ReadCloser, error) {
	file, _, _, err := s.blobPath(did, c)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blobstore/disk: open %s: %w", c, err)
	}
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blobstore/disk: open %s: %w", c, blobstore.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore/disk: open %s: %w", c, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore/disk: open %s: %w", c, err)
	}
	n, err = blobstore.Span(off, n, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore/disk: open %s: %w", c, err)
	}
	return &fileReader{ctx: ctx, f: f, r: io.NewSectionReader(f, off, n)}, nil
}

// Stat implements blobstore.Store.
func (s *Store) Stat(ctx context.Context, did syntax.DID, c cid.Cid) (int64, error) {
	file, _, _, err := s.blobPath(did, c)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("blobstore/disk: stat %s: %w", c, err)
	}
	fi, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blobstore/disk: stat %s: %w", c, blobstore.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("blobstore/disk: stat %s: %w", c, err)
	}
	return fi.Size(), nil
}

// Delete implements blobstore.Store.
func (s *Store) Delete(ctx context.Context, did syntax.DID, c cid.Cid) error {
	file, acct, _, err := s.blobPath(did, c)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blobstore/disk: delete %s: %w", c, err)
	}
	err = os.Remove(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = syncDir(acct)
	}
	if err != nil {
		return fmt.Errorf("blobstore/disk: delete %s: %w", c, err)
	}
	return nil
}

// List implements blobstore.Store.
func (s *Store) List(ctx context.Context, did syntax.DID, after cid.Cid, limit int) ([]cid.Cid, error) {
	acct, _, err := s.accountDir(did)
	if err != nil {
		return nil, err
	}
	if err := blobstore.CheckList(limit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blobstore/disk: list: %w", err)
	}
	d, err := os.Open(acct)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore/disk: list: %w", err)
	}
	defer d.Close()
	// Names only (no lstat per file), sorted here.
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("blobstore/disk: list: %w", err)
	}
	slices.Sort(names)
	i := 0
	if after.Defined() {
		a := after.String()
		i = sort.SearchStrings(names, a)
		if i < len(names) && names[i] == a {
			i++
		}
	}
	var out []cid.Cid
	for ; i < len(names) && len(out) < limit; i++ {
		c, err := cid.Parse(names[i])
		if err != nil || c.String() != names[i] {
			continue // not a blob of ours
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteAccount implements blobstore.Store. The account's directory is
// renamed into the temp directory first, so its blobs vanish at once even
// if the removal is interrupted (Open finishes it).
func (s *Store) DeleteAccount(ctx context.Context, did syntax.DID) error {
	acct, shard, err := s.accountDir(did)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blobstore/disk: delete account: %w", err)
	}
	if _, err := os.Lstat(acct); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	gone, err := os.MkdirTemp(s.tmp, delPrefix+"*")
	if err != nil {
		return fmt.Errorf("blobstore/disk: delete account: %w", err)
	}
	dst := filepath.Join(gone, "account")
	if err := os.Rename(acct, dst); err != nil {
		os.Remove(gone)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("blobstore/disk: delete account: %w", err)
	}
	if err := syncDir(shard); err != nil {
		return fmt.Errorf("blobstore/disk: delete account: %w", err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("blobstore/disk: delete account: %w", err)
	}
	return nil
}

// fileReader reads a section of a blob file until ctx is done.
type fileReader struct {
	ctx context.Context
	f   *os.File
	r   *io.SectionReader
}

func (r *fileReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *fileReader) Close() error { return r.f.Close() }
