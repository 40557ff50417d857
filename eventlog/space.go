package eventlog

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// DefaultMinFreeBytes is the free space Options.MinFreeBytes keeps in
// reserve by default: room for Pebble to flush and compact, and for the
// projections to apply what the log already holds, once appends stop.
const DefaultMinFreeBytes = 64 << 20

// ErrDiskFull is returned by Append while the filesystem under the log has
// less free space than Options.MinFreeBytes. Unlike ErrFailed it is not
// sticky: appends are accepted again as soon as space is freed.
var ErrDiskFull = errors.New("eventlog: disk full")

// spaceGuard refuses appends before they reach Pebble when the disk is
// nearly full, so that a full disk is a refusal the log recovers from by
// itself rather than a write error that fails it.
type spaceGuard struct {
	fs      vfs.FS
	dir     string
	reserve uint64 // 0: disabled
	warned  atomic.Bool
	low     atomic.Bool // last check found the disk below the reserve
	logf    func(msg string, args ...any)
}

// check returns ErrDiskFull (wrapped with the figures) when writing n more
// bytes would leave less than the reserve free.
func (g *spaceGuard) check(n int) error {
	if g.reserve == 0 {
		return nil
	}
	avail, err := CheckFreeSpace(g.fs, g.dir, g.reserve, uint64(n))
	switch {
	case errors.Is(err, ErrDiskFull):
		if g.low.CompareAndSwap(false, true) {
			g.logf("disk nearly full: refusing appends until space is freed", "dir", g.dir, "avail_bytes", avail, "reserve_bytes", g.reserve)
		}
		return err
	case err != nil:
		// A filesystem that cannot tell (an in-memory one) is not guarded.
		if g.warned.CompareAndSwap(false, true) {
			g.logf("free space unknown; appends are not guarded against a full disk", "dir", g.dir, "err", err)
		}
		return nil
	}
	if g.low.CompareAndSwap(true, false) {
		g.logf("disk space available again: accepting appends", "dir", g.dir, "avail_bytes", avail)
	}
	return nil
}

// CheckFreeSpace returns the free bytes of the filesystem under dir, and
// ErrDiskFull (wrapped with the figures) when writing n more bytes would
// leave less than reserve free. Any other error means fs cannot tell.
func CheckFreeSpace(fs vfs.FS, dir string, reserve, n uint64) (uint64, error) {
	u, err := fs.GetDiskUsage(dir)
	if err != nil {
		return 0, err
	}
	if u.AvailBytes < reserve || u.AvailBytes-reserve < n {
		return u.AvailBytes, fmt.Errorf("%w: %d bytes free under %s, %d kept in reserve", ErrDiskFull, u.AvailBytes, dir, reserve)
	}
	return u.AvailBytes, nil
}

// CheckSpace reports ErrDiskFull when writing n bytes beside the log (a
// blob upload, say) would leave less free space than the log keeps in
// reserve; nil otherwise, or when free space cannot be known.
func (l *Log) CheckSpace(n int64) error {
	if n < 0 {
		n = 0
	}
	return l.space.check(int(min(n, int64(^uint(0)>>1))))
}
