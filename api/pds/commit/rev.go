package commit

import (
	"fmt"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// MaxClockSkew is how far ahead of the wall clock a rev may be; relays drop
// commits whose rev is further in the future.
const MaxClockSkew = 5 * time.Minute

// revClock hands out revs (TIDs) that strictly increase within the process
// and past each repo's last rev, even when the wall clock steps backwards.
type revClock struct {
	mu   sync.Mutex
	last uint64 // the largest TID integer handed out
}

// next returns a rev greater than last (the repo's current rev; "" for
// none) and than every rev handed out before: the TID of now when that is
// greater, else the larger of the two plus one. It refuses a rev more than
// MaxClockSkew ahead of now (the clock stepped far backwards).
func (c *revClock) next(last syntax.TID, now time.Time) (syntax.TID, error) {
	v := syntax.NewTID(now.UnixMicro(), 0).Integer()
	c.mu.Lock()
	if v <= c.last {
		v = c.last + 1
	}
	if last != "" {
		if l := last.Integer(); v <= l {
			v = l + 1
		}
	}
	c.last = max(c.last, v)
	c.mu.Unlock()
	rev := syntax.NewTIDFromInteger(v)
	if ahead := rev.Time().Sub(now); ahead > MaxClockSkew {
		return "", fmt.Errorf("%w: next rev %s is %s ahead of the clock", ErrClock, rev, ahead.Round(time.Second))
	}
	return rev, nil
}
