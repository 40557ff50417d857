package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

var (
	// ErrNotExist is returned (wrapped) for an object the store does not hold.
	ErrNotExist = errors.New("objstore: object does not exist")
	// ErrBadKey is returned (wrapped) for a key the store refuses.
	ErrBadKey = errors.New("objstore: bad key")
	// ErrStop, returned by a List callback, ends the listing without error.
	ErrStop = errors.New("objstore: stop listing")
)

// Object is one listed object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store keeps a backup's objects. Implementations are safe for
// concurrent use.
type Store interface {
	// Put stores size bytes of r as key, replacing any object there,
	// atomically. r is read from its start; backends may read it more
	// than once (retries), seeking back to 0.
	Put(ctx context.Context, key string, r io.ReadSeeker, size int64) error
	// Get opens key for reading; ErrNotExist when missing. The caller
	// closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange reads n bytes of key from off (fewer when the object ends
	// first); ErrNotExist when missing.
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// List calls fn for every object whose key starts with prefix and
	// sorts after after ("" for all), in ascending key order. fn returning
	// ErrStop ends the listing (List returns nil); any other error ends it
	// and is returned.
	List(ctx context.Context, prefix, after string, fn func(Object) error) error
	// Delete removes key; a missing object is not an error.
	Delete(ctx context.Context, key string) error
}

// CheckKey validates a key: non-empty, relative, '/'-separated, without
// empty, "." or ".." segments, without NUL or backslash.
func CheckKey(key string) error {
	if key == "" || len(key) > 900 || strings.ContainsAny(key, "\x00\\") {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
	}
	return nil
}

// ReadAll reads the whole object key, refusing one over limit bytes.
func ReadAll(ctx context.Context, s Store, key string, limit int64) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("objstore: read %s: %w", key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("objstore: %s is over %d bytes", key, limit)
	}
	return b, nil
}
