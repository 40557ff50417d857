package eventlog

import "github.com/cockroachdb/pebble/v2"

// cursor steps a Pebble iterator forward and keeps the first error: the
// shared part of Iterator and RepoIterator.
type cursor struct {
	it    *pebble.Iterator
	err   error
	begun bool
}

// step moves to the next key; false at the end or on error (then err is set).
func (c *cursor) step() bool {
	if c.err != nil || c.it == nil {
		return false
	}
	var ok bool
	if !c.begun {
		c.begun = true
		ok = c.it.First()
	} else {
		ok = c.it.Next()
	}
	if !ok {
		c.err = c.it.Error()
	}
	return ok
}

// close releases the iterator once (Pebble pools iterators: closing one
// twice corrupts another) and returns the first error.
func (c *cursor) close() error {
	if c.it != nil {
		cerr := c.it.Close()
		c.it = nil
		if cerr != nil && c.err == nil {
			c.err = cerr
		}
	}
	return c.err
}
