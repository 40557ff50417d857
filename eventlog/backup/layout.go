package backup

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pdslog/pdslog/eventlog"
)

// Object layout under the backup's prefix:
//
//	manifests/GEN.json                        a generation's manifest
//	segments/GEN/FIRST-LAST-VER.seg           its segments (20-digit seqs, 4-digit version)
//	keys/GEN.age                              its keys/ directory, age-encrypted
//	blobs/DID/CID                             blob bytes, shared by all generations
//
// A generation is one unbroken history of one log: a data dir ships into
// the generation it recorded, and starts a new one when it has none (a new
// or restored data dir), so a restored log, whose seqs after the restore
// point differ from what was shipped, never mixes with the old history.
// Generation names sort by creation time.
const (
	manifestDir = "manifests/"
	segmentDir  = "segments/"
	keysDir     = "keys/"
	blobsDir    = "blobs/"
)

var generationRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)

// ValidGeneration reports whether g is a generation name.
func ValidGeneration(g string) bool { return generationRE.MatchString(g) }

func newGeneration(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func manifestKey(gen string) string { return manifestDir + gen + ".json" }
func keysKey(gen string) string     { return keysDir + gen + ".age" }
func segmentPrefix(gen string) string {
	return segmentDir + gen + "/"
}

// segRef names one segment object.
type segRef struct {
	Key         string
	First, Last eventlog.Seq
	Version     int
	Size        int64
	Modified    time.Time
}

func segmentKey(gen string, first, last eventlog.Seq, ver int) string {
	return fmt.Sprintf("%s%020d-%020d-%04d.seg", segmentPrefix(gen), first, last, ver)
}

// parseSegmentKey parses a key segmentKey made.
func parseSegmentKey(gen, key string) (segRef, bool) {
	name, ok := strings.CutPrefix(key, segmentPrefix(gen))
	if !ok || len(name) != 20+1+20+1+4+4 || !strings.HasSuffix(name, ".seg") || name[20] != '-' || name[41] != '-' {
		return segRef{}, false
	}
	first, err1 := strconv.ParseUint(name[:20], 10, 64)
	last, err2 := strconv.ParseUint(name[21:41], 10, 64)
	ver, err3 := strconv.Atoi(name[42:46])
	if err1 != nil || err2 != nil || err3 != nil || first < 1 || last < first || ver < 0 {
		return segRef{}, false
	}
	return segRef{Key: key, First: eventlog.Seq(first), Last: eventlog.Seq(last), Version: ver}, true
}

// chain walks a generation's segments in key order and picks the ones
// that tile seqs 1..head without gap or overlap: at each position the
// segment reaching furthest (a merge of several), and of those the
// highest version (a rewrite after a purge). Segments it passes over are
// stale: older versions, segments a longer one covers, and whatever lies
// beyond the first hole (left by an upload that finished before an
// earlier one, when the shipper died between them).
type chain struct {
	next  eventlog.Seq // the seq the next chosen segment must start at
	group []segRef     // candidates starting at next
	stale []segRef
	hole  bool
	emit  func(segRef) error
}

func newChain(emit func(segRef) error) *chain { return &chain{next: 1, emit: emit} }

// add takes the next segment in key order.
func (c *chain) add(r segRef) error {
	if len(c.group) > 0 && r.First != c.group[0].First {
		if err := c.flush(); err != nil {
			return err
		}
	}
	switch {
	case c.hole || r.First > c.next:
		c.hole = true
		c.stale = append(c.stale, r)
	case r.First < c.next:
		c.stale = append(c.stale, r)
	default:
		c.group = append(c.group, r)
	}
	return nil
}

func (c *chain) flush() error {
	if len(c.group) == 0 {
		return nil
	}
	best := c.group[0]
	for _, r := range c.group[1:] {
		if r.Last > best.Last || (r.Last == best.Last && r.Version > best.Version) {
			best = r
		}
	}
	for _, r := range c.group {
		if r.Key != best.Key {
			c.stale = append(c.stale, r)
		}
	}
	c.group = c.group[:0]
	c.next = best.Last + 1
	if c.emit != nil {
		return c.emit(best)
	}
	return nil
}

// head is the last seq the chain covers (after done).
func (c *chain) head() eventlog.Seq { return c.next - 1 }

func (c *chain) done() error { return c.flush() }
